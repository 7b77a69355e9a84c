/** Owns the language client: finds the server, checks it is installed, starts it, restarts it,
 * reports a crash with the last lines of its log, and keeps the status bar in step. */
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  RevealOutputChannelOn,
  type ServerOptions,
  State,
} from "vscode-languageclient/node";
import { spawn } from "node:child_process";
import * as readline from "node:readline";
import * as os from "node:os";
import { DEFAULT_FILE_PATTERNS, documentSelector } from "./files";
import { describeServerCommand, expandPath, resolveServerCommand, type ServerCommand } from "./interpreter";
import { LogTail } from "./logTail";
import { INSTALL_COMMAND, INSTALL_SCRIPT, preflight, preflightMessage } from "./preflight";
import { pythonExtensionInstalled, selectedInterpreter } from "./python";
import {
  CLIENT_SETTINGS,
  readFilePatterns,
  readOptionalPath,
  readServerSettings,
  type ServerSettings,
} from "./settings";
import { ENGINE_STATUS_NOTIFICATION, type DisplayState, isEngineStatus, statusView } from "./status";

export const SECTION = "storytransformer";

/** The language client, minus its own "couldn't create connection to server" pop-up: a failed
 * start is reported by the controller, with the server's exit code and last log lines. */
class StoryClient extends LanguageClient {
  override error(message: string, data?: unknown, showNotification: boolean | "force" = true): void {
    const reportedByController = message.endsWith("couldn't create connection to server.");
    super.error(message, data, reportedByController ? false : showNotification);
  }
}
const MAX_RESTARTS = 4;
const RESTART_WINDOW_MS = 3 * 60 * 1000;

export class ServerController implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<void> | undefined;
  private server: ServerCommand | undefined;
  private readonly tail = new LogTail(20);
  private readonly statusItem: vscode.StatusBarItem;
  private restarts: number[] = [];
  private reportedProblems = new Set<string>();
  private stopping = false;
  /** The last start failed (not installed, crashed at start): opening files does not retry. */
  private failed = false;
  /** Resolves with the exit code (or signal) of the current server process. */
  private exited: Promise<number | string | null> | undefined;

  constructor(
    readonly output: vscode.LogOutputChannel,
    showOutputCommand: string,
    private readonly restartCommand: string,
  ) {
    this.statusItem = vscode.window.createStatusBarItem("storytransformer.status", vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = "StoryTransformer";
    this.statusItem.command = showOutputCommand;
  }

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  get filePatterns(): string[] {
    const config = vscode.workspace.getConfiguration(SECTION);
    const { patterns, problems } = readFilePatterns(config.get(CLIENT_SETTINGS.files), DEFAULT_FILE_PATTERNS);
    this.report(problems);
    return patterns;
  }

  /** Settings as the server gets them: invalid ones replaced by defaults, and reported once. */
  serverSettings(): ServerSettings {
    const config = vscode.workspace.getConfiguration(SECTION);
    const section = vscode.workspace.getConfiguration().get(SECTION);
    const { settings, problems } = readServerSettings((key) => config.get(key), section);
    this.report(problems);
    return settings;
  }

  /** Starts the server unless it runs or is starting; resolves when it is up (or has failed). */
  start(): Promise<void> {
    if (this.client || this.starting) return this.starting ?? Promise.resolve();
    this.starting = this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  /** The settings that decide which process runs, as last used to start it. */
  private serverInputs = "";

  private currentServerInputs(): string {
    const config = vscode.workspace.getConfiguration(SECTION);
    return JSON.stringify([CLIENT_SETTINGS.python, CLIENT_SETTINGS.serverPath, CLIENT_SETTINGS.files].map((k) => config.get(k)));
  }

  /** After a settings change: a new process when the interpreter, server path or file patterns
   * changed (and a start was made before), a configuration push otherwise. */
  async settingsEvent(): Promise<void> {
    if ((this.client || this.failed) && this.currentServerInputs() !== this.serverInputs) await this.restart();
    else await this.settingsChanged();
  }

  /** For events (a story file opened): starts the server unless it runs or the last start failed. */
  startIfIdle(): void {
    if (!this.client && !this.starting && !this.failed) void this.start();
  }

  async restart(): Promise<void> {
    await this.starting?.catch(() => undefined);
    await this.stop();
    this.failed = false;
    this.restarts = [];
    this.reportedProblems.clear();
    await this.start();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    this.stopping = true;
    try {
      if (client.state !== State.Stopped) await client.stop(5000);
    } catch (error) {
      this.output.warn(`stopping the server: ${String(error)}`);
    } finally {
      this.stopping = false;
      await client.dispose().catch(() => undefined);
    }
  }

  /** Sends a workspace/executeCommand to the server, starting it first if needed. */
  async executeServerCommand(command: string, args: unknown[] = []): Promise<unknown> {
    await this.start();
    if (!this.client || !this.running) {
      void vscode.window.showErrorMessage(`StoryTransformer: the language server is not running, so ${command} cannot run.`, "Restart Server")
        .then((choice) => choice && vscode.commands.executeCommand(this.restartCommand));
      return undefined;
    }
    return this.client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
  }

  /** Pushes the (validated) settings after the user changed them. */
  async settingsChanged(): Promise<void> {
    this.reportedProblems.clear();
    const settings = this.serverSettings();
    if (this.client && this.running) {
      await this.client.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: settings } });
    }
  }

  private setStatus(state: DisplayState): void {
    const view = statusView(state);
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.backgroundColor = view.background ? new vscode.ThemeColor(view.background) : undefined;
    this.statusItem.show();
  }

  private report(problems: string[]): void {
    const fresh = problems.filter((p) => !this.reportedProblems.has(p));
    if (!fresh.length) return;
    for (const p of fresh) {
      this.reportedProblems.add(p);
      this.output.warn(`settings: ${p}`);
    }
    void vscode.window
      .showWarningMessage(`StoryTransformer: ${fresh.map((p) => `${p}.`).join(" ")}`, "Open Settings")
      .then((choice) => choice && vscode.commands.executeCommand("workbench.action.openSettings", SECTION));
  }

  /** The installation the server runs from (for other commands of the same installation). */
  async serverCommand(): Promise<ServerCommand> {
    return this.resolveServer();
  }

  private async resolveServer(): Promise<ServerCommand> {
    const config = vscode.workspace.getConfiguration(SECTION);
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const expand = (v?: string) => (v ? expandPath(v, os.homedir(), folder) : undefined);
    const serverPath = readOptionalPath(CLIENT_SETTINGS.serverPath, config.get(CLIENT_SETTINGS.serverPath));
    const python = readOptionalPath(CLIENT_SETTINGS.python, config.get(CLIENT_SETTINGS.python));
    this.report([serverPath.problem, python.problem].filter((p): p is string => !!p));
    const inputs = { serverPath: expand(serverPath.value), python: expand(python.value) };
    const pythonExtensionInterpreter =
      inputs.serverPath || inputs.python ? undefined : await selectedInterpreter(vscode.workspace.workspaceFolders?.[0]?.uri);
    return resolveServerCommand({ ...inputs, pythonExtensionInterpreter });
  }

  private async doStart(): Promise<void> {
    this.setStatus({ kind: "starting" });
    this.serverInputs = this.currentServerInputs();
    const server = await this.resolveServer();
    this.server = server;
    this.output.info(`server: ${describeServerCommand(server)}`);
    const check = await preflight(server);
    if (!check.ok) {
      const message = preflightMessage(server, check);
      this.output.error(message);
      this.setStatus({ kind: "not-installed", reason: message });
      this.failed = true;
      void this.offerInstallHelp(message, server);
      return;
    }
    const patterns = this.filePatterns;
    this.tail.clear();
    // Spawned here rather than by the client, to know when it exits: a crash at start is reported
    // once its last log lines have been read.
    const serverOptions: ServerOptions = async () => {
      const child = spawn(server.command, server.args, {
        env: { ...process.env, PYTHONUNBUFFERED: "1", PYTHONIOENCODING: "utf-8" },
        cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
        stdio: "pipe",
        windowsHide: true,
      });
      this.exited = new Promise((resolve) => {
        child.once("exit", (code, signal) => resolve(code ?? signal));
        child.once("error", (error) => {
          this.tail.push(String(error));
          resolve(null);
        });
      });
      return child;
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: documentSelector(patterns),
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: () => this.serverSettings(),
      stdioOptions: {
        stdout: (input, channel) => this.pipe(input, (line) => channel.info(line)),
        stderr: (input, channel) =>
          this.pipe(input, (line) => {
            this.tail.push(line);
            channel.info(`[server] ${line}`);
          }),
      },
      middleware: {
        workspace: {
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) return result;
            return params.items.map((item, i) => (item.section === SECTION ? this.serverSettings() : result[i]));
          },
        },
      },
      errorHandler: {
        // Logged in the output; a dying server is reported when the connection closes.
        error: (_error, _message, count) =>
          count !== undefined && count <= 3
            ? { action: ErrorAction.Continue, handled: true }
            : { action: ErrorAction.Shutdown, handled: true },
        closed: () => this.onClosed(),
      },
      // Reported once, by the failed start() below.
      initializationFailedHandler: () => false,
    };
    const client = new StoryClient(SECTION, "StoryTransformer", serverOptions, clientOptions);
    this.client = client;
    let reachedRunning = false;
    this.reachedRunning = () => reachedRunning;
    client.onDidChangeState((event) => {
      if (event.newState === State.Running) reachedRunning = true;
      void vscode.commands.executeCommand("setContext", "storytransformer.serverRunning", event.newState === State.Running);
      if (event.newState === State.Stopped && this.client === client && !this.stopping) {
        this.setStatus({ kind: "stopped", reason: this.tail.last(1)[0] });
      }
    });
    // Registered before start: the server reports the engine as soon as it is initialised.
    client.onNotification(ENGINE_STATUS_NOTIFICATION, (params: unknown) => this.showEngineStatus(params));
    try {
      await client.start();
    } catch (error) {
      if (this.client === client) {
        this.client = undefined;
        this.failed = true;
        const code = await this.exitCode(3000);
        await client.dispose().catch(() => undefined);
        const what =
          code !== undefined
            ? `the language server exited while starting (${typeof code === "number" ? `exit code ${code}` : code ?? "could not run"})`
            : `the language server did not start: ${String((error as Error)?.message ?? error)}`;
        void this.reportCrash(what);
      }
      return;
    }
    this.failed = false;
  }

  /** Shows an engine status from the notification or from a command's reply. */
  showEngineStatus(params: unknown): void {
    if (isEngineStatus(params)) this.setStatus({ kind: "engine", engine: params });
    else this.output.warn(`ignored a malformed engine status: ${JSON.stringify(params)}`);
  }

  private pipe(input: NodeJS.ReadableStream, onLine: (line: string) => void): void {
    readline.createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 }).on("line", onLine);
  }

  private reachedRunning: () => boolean = () => false;

  /** The server process's exit code once it has exited, waiting up to `ms`; undefined if it runs. */
  private async exitCode(ms: number): Promise<number | string | null | undefined> {
    if (!this.exited) return undefined;
    const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms));
    const code = await Promise.race([this.exited, timeout]);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the last stderr lines
    return code;
  }

  private onClosed(): { action: CloseAction; handled: boolean } {
    // A server that never got running is reported by the failed start, not restarted in a loop.
    if (!this.reachedRunning()) return { action: CloseAction.DoNotRestart, handled: true };
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    this.restarts.push(now);
    if (this.restarts.length <= MAX_RESTARTS && !this.stopping) {
      this.output.warn(`the language server stopped; restarting (${this.restarts.length}/${MAX_RESTARTS})`);
      return { action: CloseAction.Restart, handled: true };
    }
    const crashes = this.restarts.length;
    void this.exitCode(3000).then(() =>
      this.reportCrash(`the language server crashed ${crashes} times in 3 minutes and was not restarted`),
    );
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  /** The error message for a server that died: what happened, the last lines of its log, Restart. */
  private async reportCrash(what: string): Promise<void> {
    const last = this.tail.last(5);
    this.output.error(`${what}${this.server ? ` (${describeServerCommand(this.server)})` : ""}`);
    this.setStatus({ kind: "stopped", reason: what });
    const detail = last.length ? ` Last lines of its log: ${last.join(" | ")}` : "";
    const choice = await vscode.window.showErrorMessage(`StoryTransformer: ${what}.${detail}`, "Restart", "Show Output");
    if (choice === "Restart") await vscode.commands.executeCommand(this.restartCommand);
    if (choice === "Show Output") this.output.show(true);
  }

  private async offerInstallHelp(message: string, server: ServerCommand): Promise<void> {
    const actions = ["Copy Install Command", "Open Settings", "Show Output"];
    if (pythonExtensionInstalled()) actions.splice(1, 0, "Select Interpreter");
    const choice = await vscode.window.showErrorMessage(message, ...actions);
    if (choice === "Copy Install Command") {
      const python = server.python ?? "python3";
      await vscode.env.clipboard.writeText(`${python} -m ${INSTALL_COMMAND}`);
      void vscode.window.showInformationMessage(
        `Copied "${python} -m ${INSTALL_COMMAND}". From a checkout, run ${INSTALL_SCRIPT}. Then run "StoryTransformer: Restart Server".`,
      );
    } else if (choice === "Select Interpreter") {
      await vscode.commands.executeCommand("python.setInterpreter");
    } else if (choice === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", `${SECTION}.python`);
    } else if (choice === "Show Output") {
      this.output.show(true);
    }
  }

  dispose(): void {
    this.statusItem.dispose();
    void this.stop();
  }
}

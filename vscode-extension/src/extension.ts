/** Entry point: wires the server controller, the commands and the lazy start. The server starts
 * when a story file is open or the workspace holds one, or when a command needs it. */
import * as vscode from "vscode";
import { CLIENT_COMMANDS, SERVER_COMMANDS } from "./commands";
import { workspaceGlob, documentSelector } from "./files";
import { mergeArguments } from "./merge";
import { folderToReport, reportFailure, reportInvocation } from "./report";
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { recheckSummary } from "./status";
import { onInterpreterChange } from "./python";
import { SECTION, ServerController } from "./serverController";

let controller: ServerController | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("StoryTransformer", { log: true });
  const ctl = new ServerController(output, CLIENT_COMMANDS.showOutput, CLIENT_COMMANDS.restartServer);
  controller = ctl;
  context.subscriptions.push(output, ctl);

  const register = (id: string, run: (...args: unknown[]) => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, run));
  register(CLIENT_COMMANDS.restartServer, () => ctl.restart());
  register(CLIENT_COMMANDS.showOutput, () => output.show(true));
  register(CLIENT_COMMANDS.recheckWorkspace, async () => {
    const result = await ctl.executeServerCommand(SERVER_COMMANDS.recheckWorkspace);
    const summary = recheckSummary(result);
    if (summary) void vscode.window.setStatusBarMessage(`StoryTransformer: ${summary}`, 5000);
    return result;
  });
  for (const [command, serverCommand] of [
    [CLIENT_COMMANDS.loadModel, SERVER_COMMANDS.loadModel],
    [CLIENT_COMMANDS.unloadModel, SERVER_COMMANDS.unloadModel],
  ] as const) {
    register(command, async () => {
      const status = await ctl.executeServerCommand(serverCommand);
      if (status !== undefined) ctl.showEngineStatus(status);
      return status;
    });
  }
  // The server says what the checks found (a notification); the command's result is for scripts.
  register(CLIENT_COMMANDS.runModelChecks, () => ctl.executeServerCommand(SERVER_COMMANDS.runModelChecks));
  register(CLIENT_COMMANDS.mergeSelectedStories, () => mergeSelectedStories(ctl));
  register(CLIENT_COMMANDS.openReport, () => openReport(ctl, output));

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(SECTION)) void ctl.settingsEvent();
    }),
    vscode.workspace.onDidOpenTextDocument((document) => {
      if (!ctl.running && isStoryFile(ctl, document)) ctl.startIfIdle();
    }),
  );
  const interpreterWatch = await onInterpreterChange(() => {
    const config = vscode.workspace.getConfiguration(SECTION);
    if (!config.get("python") && !config.get("server.path")) void ctl.restart();
  });
  if (interpreterWatch) context.subscriptions.push(interpreterWatch);

  if (vscode.workspace.textDocuments.some((d) => isStoryFile(ctl, d)) || (await workspaceHasStories(ctl))) {
    await ctl.start();
  }
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}

function isStoryFile(ctl: ServerController, document: vscode.TextDocument): boolean {
  return vscode.languages.match(documentSelector(ctl.filePatterns), document) > 0;
}

async function workspaceHasStories(ctl: ServerController): Promise<boolean> {
  if (!vscode.workspace.workspaceFolders?.length) return false;
  const found = await vscode.workspace.findFiles(workspaceGlob(ctl.filePatterns), "**/node_modules/**", 1);
  return found.length > 0;
}

async function mergeSelectedStories(ctl: ServerController): Promise<unknown> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    void vscode.window.showInformationMessage("StoryTransformer: open a story file and select the stories to merge.");
    return undefined;
  }
  const spans = editor.selections.map((s) => ({
    startLine: s.start.line,
    endLine: s.end.line,
    endsAtLineStart: s.end.character === 0,
  }));
  const refs = mergeArguments(editor.document.uri.toString(), spans, (line) =>
    editor.document.lineAt(line).isEmptyOrWhitespace,
  );
  if (refs.length < 2) {
    void vscode.window.showInformationMessage(
      "StoryTransformer: select two or more stories (lines, or one cursor per story) to merge them.",
    );
    return undefined;
  }
  // The server shows the merged story (window/showMessageRequest: "Apply merge" / "Cancel") and applies it
  // with workspace/applyEdit only when confirmed; it shows its own messages on failure.
  return ctl.executeServerCommand(SERVER_COMMANDS.mergeStories, refs);
}

async function openReport(ctl: ServerController, output: vscode.LogOutputChannel): Promise<string | undefined> {
  const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  if (!folders.length) {
    void vscode.window.showInformationMessage("StoryTransformer: open a folder to report on its backlog.");
    return undefined;
  }
  // Several folders (a multi-root workspace): the active file's folder, else ask which.
  const folder = await folderToReport(folders, vscode.window.activeTextEditor?.document.uri.fsPath, async () =>
    (await vscode.window.showWorkspaceFolderPick({ placeHolder: "StoryTransformer: report on which folder?" }))?.uri.fsPath);
  if (!folder) return undefined;
  const choice = await vscode.window.showQuickPick(
    [
      { label: "Full report", description: "with merge proposals ranked by the model (up to a minute)", fast: false },
      { label: "Quick report", description: "without the model", fast: true },
    ],
    { placeHolder: "StoryTransformer: which report?" },
  );
  if (!choice) return undefined;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "storytransformer-report-"));
  const file = path.join(dir, "report.html");
  const run = reportInvocation(await ctl.serverCommand(), folder, file, choice.fast);
  output.info(`report: ${[run.command, ...run.args].join(" ")}`);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: "StoryTransformer: building the backlog report", cancellable: true },
    (_progress, token) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        // Run beside the folder, so the page names it ("Backlog report: my-project") rather than ".".
        const child = execFile(run.command, run.args, { cwd: path.dirname(folder), maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stderr: String(stderr) }),
        );
        token.onCancellationRequested(() => child.kill());
      }),
  );
  if (result.code !== 0) {
    output.error(result.stderr);
    void vscode.window.showErrorMessage(reportFailure(result.code, result.stderr));
    return undefined;
  }
  const panel = vscode.window.createWebviewPanel("storytransformer.report", "Backlog Report", vscode.ViewColumn.Active, {
    enableScripts: true, // the findings filters; the page's own CSP allows only inline scripts and styles
    localResourceRoots: [],
  });
  panel.webview.html = await fs.readFile(file, "utf8");
  return file;
}

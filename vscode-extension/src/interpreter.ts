/** Where the language server comes from. The settings `storytransformer.server.path` (a
 * `storytransformer` executable) or `storytransformer.python` win; then the interpreter selected in
 * the Python extension; then `python3` on PATH. Pure: the caller supplies what it found. */

export type ServerSource =
  | "storytransformer.server.path"
  | "storytransformer.python"
  | "Python extension"
  | "PATH";

export interface ServerCommand {
  command: string;
  args: string[];
  /** The interpreter to probe with `-c "import storytransformer_server"`; absent for server.path. */
  python?: string;
  source: ServerSource;
}

export interface InterpreterInputs {
  serverPath?: string;
  python?: string;
  /** The Python extension's active interpreter for the workspace, when that extension is installed. */
  pythonExtensionInterpreter?: string;
  platform?: NodeJS.Platform;
}

export const SERVER_MODULE_ARGS = ["-m", "storytransformer", "lsp"];

export function defaultPython(platform: NodeJS.Platform = process.platform): string {
  return platform === "win32" ? "python" : "python3";
}

/** Expands `~` and `${workspaceFolder}` the way users write them in settings. */
export function expandPath(value: string, home: string, workspaceFolder?: string): string {
  let out = value.trim();
  if (out === "~" || out.startsWith("~/")) out = home + out.slice(1);
  if (workspaceFolder !== undefined) out = out.replace(/\$\{workspaceFolder\}/g, workspaceFolder);
  return out;
}

export function resolveServerCommand(inputs: InterpreterInputs): ServerCommand {
  const serverPath = inputs.serverPath?.trim();
  if (serverPath) {
    return { command: serverPath, args: ["lsp"], source: "storytransformer.server.path" };
  }
  const python = inputs.python?.trim();
  if (python) {
    return { command: python, args: [...SERVER_MODULE_ARGS], python, source: "storytransformer.python" };
  }
  const fromExtension = inputs.pythonExtensionInterpreter?.trim();
  if (fromExtension) {
    return {
      command: fromExtension,
      args: [...SERVER_MODULE_ARGS],
      python: fromExtension,
      source: "Python extension",
    };
  }
  const fallback = defaultPython(inputs.platform);
  return { command: fallback, args: [...SERVER_MODULE_ARGS], python: fallback, source: "PATH" };
}

export function describeServerCommand(server: ServerCommand): string {
  return `${[server.command, ...server.args].join(" ")} (from ${server.source})`;
}

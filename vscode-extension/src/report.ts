/** "Open Backlog Report": runs `storytransformer report` for the workspace folder and shows the
 * self-contained page in a webview. Pure helpers here; the VS Code wiring is in extension.ts. */
import type { ServerCommand } from "./interpreter";

export interface ReportInvocation {
  command: string;
  args: string[];
}

/** The command line that writes the report of `folder` to `output` with the same installation
 * the language server runs from. `fast` skips the model (no merge ranking). */
export function reportInvocation(server: ServerCommand, folder: string, output: string, fast: boolean): ReportInvocation {
  const tail = ["report", folder, "-o", output, ...(fast ? ["--no-model"] : ["--model-seconds", "60"])];
  if (server.source === "storytransformer.server.path") return { command: server.command, args: tail };
  const python = server.python ?? server.command;
  return { command: python, args: ["-m", "storytransformer", ...tail] };
}

/** The message to show when the report command failed: its last line on stderr, which names the problem. */
export function reportFailure(exitCode: number | null, stderr: string): string {
  const last = stderr.trim().split(/\r?\n/).filter((l) => l.trim()).pop();
  return `StoryTransformer: the report failed (exit code ${exitCode ?? "none"})${last ? `: ${last}` : ""}`;
}

/** Which workspace folder to report on: the only one; with several, the one holding the active file when
 * there is one, else the one the user picks (undefined: none open, or the pick was dismissed). */
export async function folderToReport(
  folders: readonly string[],
  activeFile: string | undefined,
  pick: () => Promise<string | undefined>,
): Promise<string | undefined> {
  if (folders.length <= 1) return folders[0];
  const inside = (folder: string) => {
    const sep = folder.includes("\\") ? "\\" : "/";
    return activeFile !== undefined && activeFile.startsWith(folder.endsWith(sep) ? folder : folder + sep);
  };
  const holding = folders.filter(inside);
  if (holding.length) return holding.sort((a, b) => b.length - a.length)[0];
  return pick();
}

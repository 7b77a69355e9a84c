/** Before starting the client, check that the chosen interpreter can import the server, so that a
 * missing install reads "install it with ..." rather than "client is not running". */
import { execFile } from "node:child_process";
import type { ServerCommand } from "./interpreter";

export const SERVER_IMPORT_PROBE = "import storytransformer_server";
export const INSTALL_COMMAND = "pip install storytransformer";
export const INSTALL_SCRIPT = "scripts/install.sh";

export type PreflightResult =
  | { ok: true }
  | { ok: false; problem: "missing-command" | "not-installed" | "failed"; detail: string };

export interface ProbeOutcome {
  /** Node's error code when the process could not start (ENOENT, EACCES), else undefined. */
  spawnError?: string;
  exitCode: number | null;
  stderr: string;
}

/** Interprets a probe run; kept apart from running it so the mapping is testable. */
export function interpretProbe(server: ServerCommand, outcome: ProbeOutcome): PreflightResult {
  const who = server.python ?? server.command;
  if (outcome.spawnError === "ENOENT" || outcome.spawnError === "EACCES") {
    return {
      ok: false,
      problem: "missing-command",
      detail: `${who} could not be run (${outcome.spawnError}).`,
    };
  }
  if (outcome.spawnError) {
    return { ok: false, problem: "failed", detail: `${who} failed to start: ${outcome.spawnError}` };
  }
  if (outcome.exitCode === 0) return { ok: true };
  const lastLine = outcome.stderr.trim().split(/\r?\n/).pop() ?? "";
  if (/ModuleNotFoundError|No module named/.test(outcome.stderr)) {
    return { ok: false, problem: "not-installed", detail: lastLine };
  }
  return { ok: false, problem: "failed", detail: lastLine || `exit code ${outcome.exitCode}` };
}

/** The message shown to the user: what went wrong, with which interpreter, and the fix. */
export function preflightMessage(server: ServerCommand, result: Exclude<PreflightResult, { ok: true }>): string {
  const who = server.python ?? server.command;
  const choose =
    "Set `storytransformer.python` to an interpreter that has it (or select one with the Python extension).";
  switch (result.problem) {
    case "missing-command":
      return server.python
        ? `StoryTransformer: the Python interpreter \`${who}\` (from ${server.source}) was not found. ${choose}`
        : `StoryTransformer: the server \`${who}\` (from ${server.source}) was not found or is not executable.`;
    case "not-installed":
      return (
        `StoryTransformer is not installed for \`${who}\` (from ${server.source}). ` +
        `Install it with \`${who} -m ${INSTALL_COMMAND}\` (or \`${INSTALL_SCRIPT}\` in a checkout). ${choose}`
      );
    case "failed":
      return `StoryTransformer: \`${who}\` (from ${server.source}) cannot load the server: ${result.detail}`;
  }
}

function run(command: string, args: string[], timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, windowsHide: true }, (error, _stdout, stderr) => {
      if (!error) return resolve({ exitCode: 0, stderr: String(stderr) });
      const code = (error as NodeJS.ErrnoException).code as unknown;
      if (typeof code === "string") return resolve({ spawnError: code, exitCode: null, stderr: String(stderr) });
      const timedOut = (error as { killed?: boolean }).killed ? `timed out after ${timeoutMs} ms\n` : "";
      resolve({ exitCode: typeof code === "number" ? code : 1, stderr: timedOut + String(stderr) });
    });
  });
}

export async function preflight(server: ServerCommand, timeoutMs = 30_000): Promise<PreflightResult> {
  // A `storytransformer` executable answers --version; an interpreter must import the server package.
  const probe = server.python ? [server.python, "-c", SERVER_IMPORT_PROBE] : [server.command, "--version"];
  return interpretProbe(server, await run(probe[0], probe.slice(1), timeoutMs));
}

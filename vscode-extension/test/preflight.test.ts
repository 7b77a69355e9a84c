import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveServerCommand } from "../src/interpreter";
import { interpretProbe, preflight, preflightMessage } from "../src/preflight";

const python = resolveServerCommand({ python: "/venv/bin/python" });

/** A stand-in interpreter: a shell script that answers like Python would. */
function fakeInterpreter(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), "st-preflight-"));
  const path = join(dir, "python");
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

describe("interpretProbe", () => {
  it("accepts a zero exit", () => {
    expect(interpretProbe(python, { exitCode: 0, stderr: "" })).toEqual({ ok: true });
  });

  it("recognises a missing package and names the install command", () => {
    const result = interpretProbe(python, {
      exitCode: 1,
      stderr: "Traceback (most recent call last):\n  File ...\nModuleNotFoundError: No module named 'storytransformer_server'\n",
    });
    expect(result).toEqual({ ok: false, problem: "not-installed", detail: "ModuleNotFoundError: No module named 'storytransformer_server'" });
    if (result.ok) throw new Error("unreachable");
    const message = preflightMessage(python, result);
    expect(message).toContain("StoryTransformer is not installed for `/venv/bin/python` (from storytransformer.python)");
    expect(message).toContain("`/venv/bin/python -m pip install storytransformer`");
    expect(message).toContain("scripts/install.sh");
  });

  it("says the interpreter is missing when it cannot be run", () => {
    const result = interpretProbe(python, { spawnError: "ENOENT", exitCode: null, stderr: "" });
    expect(result).toMatchObject({ ok: false, problem: "missing-command" });
    if (result.ok) throw new Error("unreachable");
    expect(preflightMessage(python, result)).toContain("the Python interpreter `/venv/bin/python` (from storytransformer.python) was not found");
  });

  it("quotes the last line of any other failure", () => {
    const result = interpretProbe(python, { exitCode: 1, stderr: "Traceback...\nImportError: libstdc++.so.6: cannot open\n" });
    expect(result).toEqual({ ok: false, problem: "failed", detail: "ImportError: libstdc++.so.6: cannot open" });
  });
});

describe("preflight runs the probe", () => {
  it("reports a missing interpreter", async () => {
    const result = await preflight(resolveServerCommand({ python: "/nonexistent/bin/python3" }));
    expect(result).toMatchObject({ ok: false, problem: "missing-command" });
  });

  it("reports an interpreter without the package", async () => {
    const fake = fakeInterpreter(
      `echo "ModuleNotFoundError: No module named 'storytransformer_server'" >&2; exit 1`,
    );
    const result = await preflight(resolveServerCommand({ python: fake }));
    expect(result).toMatchObject({ ok: false, problem: "not-installed" });
  });

  it("passes the import probe to the interpreter", async () => {
    const fake = fakeInterpreter(`[ "$1" = "-c" ] && [ "$2" = "import storytransformer_server" ] && exit 0; exit 3`);
    expect(await preflight(resolveServerCommand({ python: fake }))).toEqual({ ok: true });
  });

  it("asks a storytransformer executable for its version", async () => {
    const fake = fakeInterpreter(`[ "$1" = "--version" ] && exit 0; exit 3`);
    expect(await preflight(resolveServerCommand({ serverPath: fake }))).toEqual({ ok: true });
    expect(await preflight(resolveServerCommand({ serverPath: "/nonexistent/storytransformer" }))).toMatchObject({
      problem: "missing-command",
    });
  });
});

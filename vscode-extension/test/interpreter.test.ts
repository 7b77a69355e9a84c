import { describe, expect, it } from "vitest";
import { describeServerCommand, expandPath, resolveServerCommand } from "../src/interpreter";

describe("resolveServerCommand", () => {
  it("prefers storytransformer.server.path and runs it with `lsp`", () => {
    const server = resolveServerCommand({
      serverPath: "/opt/st/bin/storytransformer",
      python: "/usr/bin/python3.11",
      pythonExtensionInterpreter: "/venv/bin/python",
    });
    expect(server).toEqual({ command: "/opt/st/bin/storytransformer", args: ["lsp"], source: "storytransformer.server.path" });
  });

  it("uses storytransformer.python over the Python extension's interpreter", () => {
    const server = resolveServerCommand({ python: " /usr/bin/python3.11 ", pythonExtensionInterpreter: "/venv/bin/python" });
    expect(server.command).toBe("/usr/bin/python3.11");
    expect(server.args).toEqual(["-m", "storytransformer", "lsp"]);
    expect(server.python).toBe("/usr/bin/python3.11");
    expect(server.source).toBe("storytransformer.python");
  });

  it("uses the Python extension's interpreter when no setting names one", () => {
    const server = resolveServerCommand({ serverPath: "  ", python: "", pythonExtensionInterpreter: "/venv/bin/python" });
    expect(server.command).toBe("/venv/bin/python");
    expect(server.source).toBe("Python extension");
  });

  it("falls back to python3 on PATH (python on Windows)", () => {
    expect(resolveServerCommand({ platform: "linux" })).toMatchObject({ command: "python3", python: "python3", source: "PATH" });
    expect(resolveServerCommand({ platform: "win32" }).command).toBe("python");
  });

  it("describes the command with where it came from", () => {
    expect(describeServerCommand(resolveServerCommand({ python: "/p/python" }))).toBe(
      "/p/python -m storytransformer lsp (from storytransformer.python)",
    );
  });
});

describe("expandPath", () => {
  it("expands ~ and ${workspaceFolder}", () => {
    expect(expandPath("~/venv/bin/python", "/home/ann")).toBe("/home/ann/venv/bin/python");
    expect(expandPath("${workspaceFolder}/.venv/bin/python", "/home/ann", "/repo")).toBe("/repo/.venv/bin/python");
    expect(expandPath("~other/python", "/home/ann")).toBe("~other/python");
  });
});

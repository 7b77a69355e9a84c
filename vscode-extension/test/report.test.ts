import { describe, expect, it } from "vitest";
import { folderToReport, reportFailure, reportInvocation } from "../src/report";

describe("reportInvocation", () => {
  it("runs the module with the server's interpreter", () => {
    const server = { command: "/venv/bin/python", args: ["-m", "storytransformer", "lsp"], python: "/venv/bin/python", source: "storytransformer.python" as const };
    expect(reportInvocation(server, "/ws", "/tmp/r.html", false)).toEqual({
      command: "/venv/bin/python",
      args: ["-m", "storytransformer", "report", "/ws", "-o", "/tmp/r.html", "--model-seconds", "60"],
    });
  });

  it("runs a storytransformer executable directly, and skips the model when asked", () => {
    const server = { command: "/opt/st/bin/storytransformer", args: ["lsp"], source: "storytransformer.server.path" as const };
    expect(reportInvocation(server, "/ws", "/tmp/r.html", true)).toEqual({
      command: "/opt/st/bin/storytransformer",
      args: ["report", "/ws", "-o", "/tmp/r.html", "--no-model"],
    });
  });
});

describe("reportFailure", () => {
  it("quotes the last line of stderr", () => {
    expect(reportFailure(2, "progress\nstorytransformer: error: /ws/x.toml: unknown key 'colour'\n")).toBe(
      "StoryTransformer: the report failed (exit code 2): storytransformer: error: /ws/x.toml: unknown key 'colour'",
    );
    expect(reportFailure(null, "")).toBe("StoryTransformer: the report failed (exit code none)");
  });
});

describe("folderToReport", () => {
  const never = async (): Promise<string | undefined> => {
    throw new Error("asked although the folder was clear");
  };

  it("takes the only folder without asking, and none when no folder is open", async () => {
    expect(await folderToReport(["/ws"], undefined, never)).toBe("/ws");
    expect(await folderToReport([], undefined, never)).toBeUndefined();
  });

  it("takes the folder of the active file in a multi-root workspace (the innermost one)", async () => {
    expect(await folderToReport(["/a", "/b", "/b/sub"], "/b/sub/stories.md", never)).toBe("/b/sub");
    expect(await folderToReport(["/a", "/ab"], "/ab/x.txt", never)).toBe("/ab");
    expect(await folderToReport(["C:\\a", "C:\\b"], "C:\\b\\x.txt", never)).toBe("C:\\b");
  });

  it("asks which folder when the active file is in none of them, or there is no active file", async () => {
    expect(await folderToReport(["/a", "/b"], "/elsewhere/x.txt", async () => "/b")).toBe("/b");
    expect(await folderToReport(["/a", "/b"], undefined, async () => undefined)).toBeUndefined();
  });
});

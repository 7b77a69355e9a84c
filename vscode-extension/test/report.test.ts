import { describe, expect, it } from "vitest";
import { reportFailure, reportInvocation } from "../src/report";

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

import { describe, expect, it } from "vitest";
import { isEngineStatus, percent, recheckSummary, shortModelName, statusView } from "../src/status";

describe("statusView", () => {
  it("shows loading with the model and its progress", () => {
    const view = statusView({ kind: "engine", engine: { state: "loading", model: "/models/SmolLM2-135M.gguf", device: "cpu", progress: 0.42 } });
    expect(view.text).toBe("$(loading~spin) Stories: loading SmolLM2-135M 42%");
    expect(view.tooltip).toContain("loading /models/SmolLM2-135M.gguf on cpu (42%)");
  });

  it("shows loading without progress when the server gives none", () => {
    expect(statusView({ kind: "engine", engine: { state: "loading", model: "Qwen/Qwen2.5-7B" } }).text).toBe(
      "$(loading~spin) Stories: loading Qwen2.5-7B",
    );
  });

  it("shows how long a load without a known fraction has been running", () => {
    const view = statusView({ kind: "engine", engine: { state: "loading", model: "/m/SmolLM2-135M.gguf", device: "cpu", elapsed: 12.4 } });
    expect(view.text).toBe("$(loading~spin) Stories: loading SmolLM2-135M 12 s");
    expect(view.tooltip).toContain("loading /m/SmolLM2-135M.gguf on cpu (12 s)");
    expect(view.tooltip).toContain("a model action waits for the load");
    expect(statusView({ kind: "engine", engine: { state: "loading", model: "x", elapsed: -1 } }).text).toBe(
      "$(loading~spin) Stories: loading x",
    );
  });

  it("shows the ready model's name and device", () => {
    const view = statusView({ kind: "engine", engine: { state: "ready", model: "HuggingFaceTB/SmolLM2-135M-Instruct", device: "cuda:0" } });
    expect(view.text).toBe("$(check) Stories: SmolLM2-135M-Instruct (cuda:0)");
    expect(view.background).toBeUndefined();
  });

  it("shows why the engine is unavailable", () => {
    const view = statusView({ kind: "engine", engine: { state: "unavailable", reason: "out of GPU memory (needs 15.2 GiB)" } });
    expect(view.text).toBe("$(circle-slash) Stories: rules only");
    expect(view.tooltip).toContain("the model is unavailable: out of GPU memory (needs 15.2 GiB)");
  });

  it("flags a stopped server and a missing install", () => {
    expect(statusView({ kind: "stopped", reason: "exit code 1" })).toMatchObject({
      text: "$(error) Stories",
      background: "statusBarItem.errorBackground",
    });
    expect(statusView({ kind: "stopped", reason: "exit code 1" }).tooltip).toContain("not running: exit code 1");
    const missing = statusView({ kind: "not-installed", reason: "StoryTransformer is not installed for `python3`" });
    expect(missing.background).toBe("statusBarItem.warningBackground");
    expect(missing.tooltip).toContain("not installed for `python3`");
  });
});

describe("helpers", () => {
  it("shortens model ids and paths", () => {
    expect(shortModelName("/a/b/model-dir/")).toBe("model-dir");
    expect(shortModelName("C:\\models\\x.GGUF")).toBe("x");
    expect(shortModelName(undefined)).toBe("model");
  });

  it("formats progress given as a fraction or a percentage, clamped", () => {
    expect(percent(0.5)).toBe("50%");
    expect(percent(75)).toBe("75%");
    expect(percent(-1)).toBe("0%");
    expect(percent(Number.NaN)).toBeUndefined();
    expect(percent(undefined)).toBeUndefined();
  });

  it("accepts only engine statuses with a known state", () => {
    expect(isEngineStatus({ state: "ready", model: "m" })).toBe(true);
    expect(isEngineStatus({ state: "busy" })).toBe(false);
    expect(isEngineStatus(null)).toBe(false);
    expect(isEngineStatus("ready")).toBe(false);
  });
});

describe("recheckSummary", () => {
  it("puts the server's counts in words", () => {
    expect(recheckSummary({ files: 3, findings: 1 })).toBe("re-checked 3 files: 1 finding");
    expect(recheckSummary({ files: 1, findings: 0 })).toBe("re-checked 1 file: 0 findings");
    expect(recheckSummary({ applied: false })).toBeUndefined();
    expect(recheckSummary(undefined)).toBeUndefined();
  });
});

/** What the status bar says. The server reports the engine with the `storytransformer/engineStatus`
 * notification; before that, the client's own state (starting, stopped, not installed) shows. Pure. */

export const ENGINE_STATUS_NOTIFICATION = "storytransformer/engineStatus";

export interface EngineStatus {
  state: "unavailable" | "loading" | "ready";
  model?: string;
  device?: string;
  reason?: string;
  /** 0..1 while loading, when the server knows. */
  progress?: number;
  /** Seconds since the load began (sent every second while a model action waits for the load). */
  elapsed?: number;
}

export type DisplayState =
  | { kind: "starting" }
  | { kind: "stopped"; reason?: string }
  | { kind: "not-installed"; reason: string }
  | { kind: "engine"; engine: EngineStatus };

export interface StatusView {
  text: string;
  tooltip: string;
  /** A theme colour id for the background, for states that need the user's attention. */
  background?: "statusBarItem.warningBackground" | "statusBarItem.errorBackground";
}

/** A model id or path shown by its last segment: `/models/SmolLM2-135M` -> `SmolLM2-135M`. */
export function shortModelName(model: string | undefined): string {
  if (!model) return "model";
  const trimmed = model.replace(/[\\/]+$/, "");
  const last = trimmed.split(/[\\/]/).pop() || trimmed;
  return last.replace(/\.gguf$/i, "");
}

export function percent(progress: number | undefined): string | undefined {
  if (typeof progress !== "number" || !Number.isFinite(progress)) return undefined;
  const clamped = Math.min(1, Math.max(0, progress > 1 ? progress / 100 : progress));
  return `${Math.round(clamped * 100)}%`;
}

/** Seconds elapsed as the status bar shows them: `12 s`; nothing for a missing or bad value. */
export function seconds(elapsed: number | undefined): string | undefined {
  if (typeof elapsed !== "number" || !Number.isFinite(elapsed) || elapsed < 0) return undefined;
  return `${Math.round(elapsed)} s`;
}

export function isEngineStatus(value: unknown): value is EngineStatus {
  if (typeof value !== "object" || value === null) return false;
  const state = (value as { state?: unknown }).state;
  return state === "unavailable" || state === "loading" || state === "ready";
}

const OPEN_LOG = "Click to show the StoryTransformer output.";

export function statusView(state: DisplayState): StatusView {
  switch (state.kind) {
    case "starting":
      return { text: "$(sync~spin) Stories", tooltip: `StoryTransformer: starting the language server.\n${OPEN_LOG}` };
    case "stopped":
      return {
        text: "$(error) Stories",
        tooltip: `StoryTransformer: the language server is not running${state.reason ? `: ${state.reason}` : ""}.\nRun "StoryTransformer: Restart Server" to try again. ${OPEN_LOG}`,
        background: "statusBarItem.errorBackground",
      };
    case "not-installed":
      return {
        text: "$(warning) Stories: not installed",
        tooltip: `${state.reason}\n${OPEN_LOG}`,
        background: "statusBarItem.warningBackground",
      };
    case "engine":
      return engineView(state.engine);
  }
}

function engineView(engine: EngineStatus): StatusView {
  const model = shortModelName(engine.model);
  switch (engine.state) {
    case "loading": {
      const done = percent(engine.progress) ?? seconds(engine.elapsed);
      return {
        text: `$(loading~spin) Stories: loading ${model}${done ? ` ${done}` : ""}`,
        tooltip: `StoryTransformer: loading ${engine.model ?? "the model"}${engine.device ? ` on ${engine.device}` : ""}${done ? ` (${done})` : ""}.\nRule checks already work; a model action waits for the load. ${OPEN_LOG}`,
      };
    }
    case "ready":
      return {
        text: `$(check) Stories: ${model}${engine.device ? ` (${engine.device})` : ""}`,
        tooltip: `StoryTransformer: ${engine.model ?? "model"} ready${engine.device ? ` on ${engine.device}` : ""}.\n${OPEN_LOG}`,
      };
    case "unavailable":
      return {
        text: "$(circle-slash) Stories: rules only",
        tooltip: `StoryTransformer: the model is unavailable${engine.reason ? `: ${engine.reason}` : ""}.\nRule checks still work; suggestions and model fixes are off. ${OPEN_LOG}`,
      };
  }
}

/** The reply of storytransformer.recheckWorkspace ({files, findings}) in words, or undefined. */
export function recheckSummary(reply: unknown): string | undefined {
  if (typeof reply !== "object" || reply === null) return undefined;
  const { files, findings } = reply as { files?: unknown; findings?: unknown };
  if (typeof files !== "number" || typeof findings !== "number") return undefined;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return `re-checked ${plural(files, "file")}: ${plural(findings, "finding")}`;
}

/** The `storytransformer` settings: their defaults, their validation, and the object the server
 * receives (initializationOptions and workspace/configuration). Settings of the wrong type are
 * reported by name and replaced by their default, so the server never sees them. Pure (no vscode). */

export const SEVERITIES = ["error", "warning", "info", "hint", "off"] as const;
/** "" everywhere below means "the project's [tool.storytransformer.engine] setting". */
export const QUANTIZATIONS = ["", "none", "int8", "nf4"] as const;
export const TRACE_LEVELS = ["off", "messages", "verbose"] as const;
export const RULE_CODE = /^ST\d{3,4}$/;
/** The kinds of fix the core's fix policy knows (storytransformer.checking.FixPolicy). */
export const FIX_KINDS = ["safe", "unsafe", "deletion"] as const;

export interface ServerSettings {
  debounceMs: number;
  rules: Record<string, (typeof SEVERITIES)[number]>;
  fixOnSave: { model: boolean; kinds: (typeof FIX_KINDS)[number][] };
  model: string;
  quantization: (typeof QUANTIZATIONS)[number];
  device: string;
  remoteUrl: string;
  daemon: { enabled: boolean; spawn: boolean; timeoutS: number; idleUnloadMinutes: number; idleExitMinutes: number };
  trace: { server: (typeof TRACE_LEVELS)[number] };
}

type Check = (value: unknown) => string | undefined; // undefined = valid, else what was expected

const isNumberAtLeast = (min: number): Check => (v) =>
  typeof v === "number" && Number.isFinite(v) && v >= min ? undefined : `a number >= ${min}`;
const isNumberIn = (min: number, max: number): Check => (v) =>
  typeof v === "number" && Number.isFinite(v) && v >= min && v <= max ? undefined : `a number from ${min} to ${max}`;
const isIntegerIn = (min: number, max: number): Check => (v) =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? undefined : `an integer from ${min} to ${max}`;
const isBoolean: Check = (v) => (typeof v === "boolean" ? undefined : "true or false");
const isString: Check = (v) => (typeof v === "string" ? undefined : "a string");
const isOneOf = (values: readonly string[]): Check => (v) =>
  typeof v === "string" && values.includes(v) ? undefined : `one of ${values.map((x) => x || '""').join(", ")}`;
const isListOf = (values: readonly string[]): Check => (v) =>
  Array.isArray(v) && v.every((x) => typeof x === "string" && values.includes(x))
    ? undefined
    : `a list of ${values.join(", ")}`;
const isDevice: Check = (v) =>
  typeof v === "string" && /^(|auto|cpu|mps|cuda(:\d+)?)$/.test(v) ? undefined : "auto, cpu, mps, cuda, cuda:N or empty";
const isUrlOrEmpty: Check = (v) => {
  if (v === "") return undefined;
  if (typeof v !== "string") return "a URL such as http://127.0.0.1:8000/v1, or empty";
  try {
    const url = new URL(v);
    return url.protocol === "http:" || url.protocol === "https:" ? undefined : "an http(s) URL, or empty";
  } catch {
    return "a URL such as http://127.0.0.1:8000/v1, or empty";
  }
};

interface SettingSpec {
  /** Dotted key below the `storytransformer` section. */
  key: string;
  default: unknown;
  check: Check;
}

/** Every setting the server receives; package.json contributes the same keys and defaults (a unit
 * test keeps the two in step). */
export const SERVER_SETTINGS: readonly SettingSpec[] = [
  { key: "debounceMs", default: 150, check: isIntegerIn(0, 10_000) },
  { key: "rules", default: {}, check: () => undefined }, // checked entry by entry below
  { key: "fixOnSave.model", default: false, check: isBoolean },
  { key: "fixOnSave.kinds", default: ["safe"], check: isListOf(FIX_KINDS) },
  { key: "model", default: "", check: isString },
  { key: "quantization", default: "", check: isOneOf(QUANTIZATIONS) },
  { key: "device", default: "", check: isDevice },
  { key: "remoteUrl", default: "", check: isUrlOrEmpty },
  { key: "daemon.enabled", default: true, check: isBoolean },
  { key: "daemon.spawn", default: true, check: isBoolean },
  { key: "daemon.timeoutS", default: 30, check: isNumberIn(0.1, 3600) },
  { key: "daemon.idleUnloadMinutes", default: 15, check: isNumberAtLeast(0) },
  { key: "daemon.idleExitMinutes", default: 60, check: isNumberAtLeast(0) },
  { key: "trace.server", default: "off", check: isOneOf(TRACE_LEVELS) },
];

/** Settings only the extension reads. */
export const CLIENT_SETTINGS = {
  files: "files",
  python: "python",
  serverPath: "server.path",
} as const;

export interface SettingsResult {
  settings: ServerSettings;
  /** One line per rejected setting, naming it, what it should be, and what was used instead. */
  problems: string[];
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(node[part])) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
}

function checkRules(value: unknown, problems: string[]): ServerSettings["rules"] {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    problems.push(
      `storytransformer.rules must be an object like {"ST201": "warning", "ST901": "off"}, not ${show(value)}; using {}`,
    );
    return {};
  }
  const rules: ServerSettings["rules"] = {};
  for (const [code, severity] of Object.entries(value as Record<string, unknown>)) {
    if (!RULE_CODE.test(code)) {
      problems.push(`storytransformer.rules: ${show(code)} is not a rule code (ST followed by 3-4 digits); ignored`);
    } else if (typeof severity !== "string" || !(SEVERITIES as readonly string[]).includes(severity)) {
      problems.push(`storytransformer.rules.${code} must be one of ${SEVERITIES.join(", ")}, not ${show(severity)}; ignored`);
    } else {
      rules[code] = severity as ServerSettings["rules"][string];
    }
  }
  return rules;
}

const CLIENT_ONLY_KEYS = new Set(["files", "python", "server"]);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function deepCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(deepCopy);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deepCopy(v)]));
  return value;
}

/** `get` reads one dotted key below `storytransformer` (undefined when unset). `section`, the
 * whole section as VS Code has it, lets keys this extension does not know (newer server options)
 * pass through unchanged; the known ones are always the validated values. */
export function readServerSettings(get: (key: string) => unknown, section?: unknown): SettingsResult {
  const problems: string[] = [];
  const settings: Record<string, unknown> = {};
  if (isPlainObject(section)) {
    for (const [key, value] of Object.entries(section)) {
      if (!CLIENT_ONLY_KEYS.has(key) && typeof value !== "function") settings[key] = deepCopy(value);
    }
  }
  for (const spec of SERVER_SETTINGS) {
    const value = get(spec.key);
    if (spec.key === "rules") {
      settings.rules = checkRules(value, problems);
      continue;
    }
    if (value === undefined || value === null) {
      setPath(settings, spec.key, spec.default);
      continue;
    }
    const expected = spec.check(value);
    if (expected) {
      problems.push(`storytransformer.${spec.key} must be ${expected}, not ${show(value)}; using ${show(spec.default)}`);
      setPath(settings, spec.key, spec.default);
    } else {
      setPath(settings, spec.key, value);
    }
  }
  return { settings: settings as unknown as ServerSettings, problems };
}

/** `storytransformer.files`: a list of glob strings; anything else falls back to the defaults. */
export function readFilePatterns(value: unknown, defaults: readonly string[]): { patterns: string[]; problems: string[] } {
  if (value === undefined || value === null) return { patterns: [...defaults], problems: [] };
  if (Array.isArray(value) && value.every((v) => typeof v === "string") && value.some((v) => v.trim())) {
    return { patterns: value as string[], problems: [] };
  }
  return {
    patterns: [...defaults],
    problems: [`storytransformer.files must be a non-empty list of glob patterns, not ${show(value)}; using the defaults`],
  };
}

/** `storytransformer.python` and `storytransformer.server.path`: strings, empty meaning unset. */
export function readOptionalPath(name: string, value: unknown): { value?: string; problem?: string } {
  if (value === undefined || value === null || value === "") return {};
  if (typeof value === "string") return { value };
  return { problem: `storytransformer.${name} must be a path (a string), not ${show(value)}; ignored` };
}

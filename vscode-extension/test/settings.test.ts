import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_FILE_PATTERNS } from "../src/files";
import { readFilePatterns, readOptionalPath, readServerSettings, SERVER_SETTINGS } from "../src/settings";

const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const contributed: Record<string, { default: unknown; description?: string; markdownDescription?: string }> =
  manifest.contributes.configuration.properties;

const from = (values: Record<string, unknown>) => (key: string) => values[key];

describe("readServerSettings", () => {
  it("maps dotted settings to the nested object the server reads", () => {
    const { settings, problems } = readServerSettings(
      from({
        debounceMs: 120,
        rules: { ST201: "error", ST901: "off" },
        "fixOnSave.model": true,
        "fixOnSave.kinds": ["safe", "deletion"],
        model: "/models/qwen.gguf",
        quantization: "nf4",
        device: "cuda:1",
        remoteUrl: "http://127.0.0.1:8000/v1",
        "daemon.enabled": false,
        "daemon.spawn": false,
        "daemon.timeoutS": 90,
        "daemon.idleUnloadMinutes": 5,
        "daemon.idleExitMinutes": 0,
        "trace.server": "verbose",
      }),
    );
    expect(problems).toEqual([]);
    expect(settings).toEqual({
      debounceMs: 120,
      rules: { ST201: "error", ST901: "off" },
      fixOnSave: { model: true, kinds: ["safe", "deletion"] },
      model: "/models/qwen.gguf",
      quantization: "nf4",
      device: "cuda:1",
      remoteUrl: "http://127.0.0.1:8000/v1",
      daemon: { enabled: false, spawn: false, timeoutS: 90, idleUnloadMinutes: 5, idleExitMinutes: 0 },
      trace: { server: "verbose" },
    });
  });

  it("fills unset settings with their defaults", () => {
    const { settings, problems } = readServerSettings(from({}));
    expect(problems).toEqual([]);
    expect(settings.debounceMs).toBe(150);
    expect(settings.fixOnSave).toEqual({ model: false, kinds: ["safe"] });
    expect(settings.daemon).toEqual({ enabled: true, spawn: true, timeoutS: 30, idleUnloadMinutes: 15, idleExitMinutes: 60 });
    expect(settings.rules).toEqual({});
    // Engine settings left empty keep the project's [tool.storytransformer.engine] values.
    expect([settings.model, settings.quantization, settings.device, settings.remoteUrl]).toEqual(["", "", "", ""]);
  });

  it("names each setting of the wrong type, says what it must be, and uses the default", () => {
    const { settings, problems } = readServerSettings(
      from({ debounceMs: "fast", "fixOnSave.model": "yes", "fixOnSave.kinds": ["safe", "all"], quantization: "q4", device: "gpu", remoteUrl: "localhost:8000" }),
    );
    expect(settings.debounceMs).toBe(150);
    expect(settings.fixOnSave.model).toBe(false);
    expect(settings.fixOnSave.kinds).toEqual(["safe"]);
    expect(settings.quantization).toBe("");
    expect(settings.device).toBe("");
    expect(settings.remoteUrl).toBe("");
    expect(problems).toEqual([
      'storytransformer.debounceMs must be an integer from 0 to 10000, not "fast"; using 150',
      'storytransformer.fixOnSave.model must be true or false, not "yes"; using false',
      'storytransformer.fixOnSave.kinds must be a list of safe, unsafe, deletion, not ["safe","all"]; using ["safe"]',
      'storytransformer.quantization must be one of "", none, int8, nf4, not "q4"; using ""',
      'storytransformer.device must be auto, cpu, mps, cuda, cuda:N or empty, not "gpu"; using ""',
      'storytransformer.remoteUrl must be an http(s) URL, or empty, not "localhost:8000"; using ""',
    ]);
  });

  it("passes keys it does not know through, and never the extension's own", () => {
    const section = {
      debounceMs: "fast",
      files: ["*.md"],
      python: "/p",
      server: { path: "/s" },
      daemon: { enabled: true, socketPath: "/run/st.sock" },
      experimental: { streaming: true },
    };
    const { settings } = readServerSettings((key) => (key === "debounceMs" ? "fast" : undefined), section);
    const out = settings as unknown as Record<string, unknown>;
    expect(out.experimental).toEqual({ streaming: true });
    expect(out.daemon).toMatchObject({ enabled: true, socketPath: "/run/st.sock", timeoutS: 30 });
    expect(out.debounceMs).toBe(150); // validated value wins over the raw one
    expect(out.files).toBeUndefined();
    expect(out.python).toBeUndefined();
    expect(out.server).toBeUndefined();
  });

  it("rejects a fractional debounce", () => {
    expect(readServerSettings(from({ debounceMs: 12.5 })).problems).toEqual([
      "storytransformer.debounceMs must be an integer from 0 to 10000, not 12.5; using 150",
    ]);
  });

  it("rejects negative timeouts", () => {
    const { settings, problems } = readServerSettings(from({ "daemon.idleUnloadMinutes": -1 }));
    expect(settings.daemon.idleUnloadMinutes).toBe(15);
    expect(problems[0]).toMatch(/^storytransformer\.daemon\.idleUnloadMinutes must be a number >= 0, not -1/);
  });

  it("keeps valid rule entries and reports the others one by one", () => {
    const { settings, problems } = readServerSettings(
      from({ rules: { ST201: "warning", ST1001: "hint", ST9: "off", ST301: "loud", ST302: 2 } }),
    );
    expect(settings.rules).toEqual({ ST201: "warning", ST1001: "hint" });
    expect(problems).toEqual([
      'storytransformer.rules: "ST9" is not a rule code (ST followed by 3-4 digits); ignored',
      'storytransformer.rules.ST301 must be one of error, warning, info, hint, off, not "loud"; ignored',
      "storytransformer.rules.ST302 must be one of error, warning, info, hint, off, not 2; ignored",
    ]);
  });

  it("replaces a rules value that is not an object", () => {
    const { settings, problems } = readServerSettings(from({ rules: ["ST201"] }));
    expect(settings.rules).toEqual({});
    expect(problems[0]).toMatch(/^storytransformer\.rules must be an object/);
  });
});

describe("package.json contributes every server setting", () => {
  it.each(SERVER_SETTINGS.map((s) => [s.key, s.default]))("storytransformer.%s with the same default", (key, value) => {
    const property = contributed[`storytransformer.${key}`];
    expect(property, `storytransformer.${key} is not contributed`).toBeDefined();
    expect(property.default).toEqual(value);
    expect(property.markdownDescription ?? property.description).toBeTruthy();
  });

  it("contributes the file patterns the code defaults to", () => {
    expect(contributed["storytransformer.files"].default).toEqual(DEFAULT_FILE_PATTERNS);
  });

  it("describes every contributed setting", () => {
    for (const [key, property] of Object.entries(contributed)) {
      expect(property.markdownDescription ?? property.description, key).toBeTruthy();
    }
  });
});

describe("client settings", () => {
  it("reads storytransformer.files, falling back to the defaults with a message", () => {
    expect(readFilePatterns(["backlog/*.txt"], DEFAULT_FILE_PATTERNS)).toEqual({ patterns: ["backlog/*.txt"], problems: [] });
    expect(readFilePatterns(undefined, DEFAULT_FILE_PATTERNS).patterns).toEqual(DEFAULT_FILE_PATTERNS);
    const wrong = readFilePatterns("*.md", DEFAULT_FILE_PATTERNS);
    expect(wrong.patterns).toEqual(DEFAULT_FILE_PATTERNS);
    expect(wrong.problems).toEqual([
      'storytransformer.files must be a non-empty list of glob patterns, not "*.md"; using the defaults',
    ]);
    expect(readFilePatterns([], DEFAULT_FILE_PATTERNS).problems).toHaveLength(1);
  });

  it("reads storytransformer.python as an optional path", () => {
    expect(readOptionalPath("python", "")).toEqual({});
    expect(readOptionalPath("python", "/usr/bin/python3")).toEqual({ value: "/usr/bin/python3" });
    expect(readOptionalPath("python", ["/usr/bin/python3"])).toEqual({
      problem: 'storytransformer.python must be a path (a string), not ["/usr/bin/python3"]; ignored',
    });
  });
});

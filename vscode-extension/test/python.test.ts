import { afterEach, describe, expect, it } from "vitest";
import { selectedInterpreter } from "../src/python";
import { extensionsById, Uri } from "./vscodeStub";

function fakePythonExtension(environments: Record<string, unknown>) {
  const extension = {
    isActive: false,
    exports: { environments },
    activate: async () => {
      extension.isActive = true;
    },
  };
  return extension;
}

afterEach(() => extensionsById.clear());

describe("selectedInterpreter", () => {
  it("is undefined when the Python extension is not installed", async () => {
    expect(await selectedInterpreter()).toBeUndefined();
  });

  it("returns the executable of the active environment, activating the extension", async () => {
    const seen: unknown[] = [];
    const ext = fakePythonExtension({
      getActiveEnvironmentPath: (resource: unknown) => {
        seen.push(resource);
        return { id: "venv", path: "/repo/.venv" };
      },
      resolveEnvironment: async (env: { path: string }) => ({ executable: { uri: Uri.file(`${env.path}/bin/python`) } }),
    });
    extensionsById.set("ms-python.python", ext);
    const folder = Uri.file("/repo");
    expect(await selectedInterpreter(folder as never)).toBe("/repo/.venv/bin/python");
    expect(ext.isActive).toBe(true);
    expect(seen).toEqual([folder]);
  });

  it("falls back to the environment path when it cannot be resolved", async () => {
    extensionsById.set(
      "ms-python.python",
      fakePythonExtension({
        getActiveEnvironmentPath: () => ({ id: "x", path: "/usr/bin/python3" }),
        resolveEnvironment: async () => undefined,
      }),
    );
    expect(await selectedInterpreter()).toBe("/usr/bin/python3");
  });

  it("is undefined when the extension's API throws or hangs", async () => {
    extensionsById.set(
      "ms-python.python",
      fakePythonExtension({
        getActiveEnvironmentPath: () => {
          throw new Error("no interpreter");
        },
      }),
    );
    expect(await selectedInterpreter()).toBeUndefined();
    extensionsById.set(
      "ms-python.python",
      fakePythonExtension({
        getActiveEnvironmentPath: () => ({ id: "x", path: "/p" }),
        resolveEnvironment: () => new Promise(() => undefined),
      }),
    );
    expect(await selectedInterpreter(undefined, 50)).toBeUndefined();
  });
});

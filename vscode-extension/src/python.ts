/** The interpreter selected in the Python extension (ms-python.python), when it is installed. */
import * as vscode from "vscode";
// Types only: the API object is the extension's `exports`, which the package's own `api()` also
// returns; importing them as types keeps the bundle free of a second `vscode` require.
import type { PythonExtension } from "@vscode/python-extension";

export const PYTHON_EXTENSION_ID = "ms-python.python";

async function pythonApi(): Promise<PythonExtension> {
  const extension = vscode.extensions.getExtension<PythonExtension>(PYTHON_EXTENSION_ID);
  if (!extension) throw new Error("the Python extension is not installed");
  if (!extension.isActive) await extension.activate();
  return extension.exports;
}

export function pythonExtensionInstalled(): boolean {
  return vscode.extensions.getExtension(PYTHON_EXTENSION_ID) !== undefined;
}

/** The active interpreter's executable for `resource`, or undefined (extension absent, slow, or no
 * interpreter selected). Never throws: the caller falls back to python3 on PATH. */
export async function selectedInterpreter(resource?: vscode.Uri, timeoutMs = 15_000): Promise<string | undefined> {
  if (!pythonExtensionInstalled()) return undefined;
  const lookup = (async () => {
    const api = await pythonApi();
    const active = api.environments.getActiveEnvironmentPath(resource);
    const resolved = await api.environments.resolveEnvironment(active);
    return resolved?.executable.uri?.fsPath ?? active.path;
  })();
  const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), timeoutMs));
  try {
    return await Promise.race([lookup, timeout]);
  } catch {
    return undefined;
  }
}

/** Calls `listener` when the user picks another interpreter in the Python extension. */
export async function onInterpreterChange(listener: () => void): Promise<vscode.Disposable | undefined> {
  if (!pythonExtensionInstalled()) return undefined;
  try {
    const api = await pythonApi();
    return api.environments.onDidChangeActiveEnvironmentPath(() => listener());
  } catch {
    return undefined;
  }
}

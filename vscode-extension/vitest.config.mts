import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The `vscode` module exists only inside VS Code: unit tests get a small stand-in.
export default defineConfig({
  resolve: { alias: { vscode: fileURLToPath(new URL("./test/vscodeStub.ts", import.meta.url)) } },
  test: {
    include: ["test/**/*.test.ts"],
  },
});

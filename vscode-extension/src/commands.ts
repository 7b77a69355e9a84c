/** Command ids. The client's own commands live under `storytransformer.client.*` because the
 * language client registers the server's workspace/executeCommand ids (`storytransformer.*`) as
 * VS Code commands itself, and two registrations of one id fail. */
export const CLIENT_COMMANDS = {
  restartServer: "storytransformer.client.restartServer",
  showOutput: "storytransformer.client.showOutput",
  mergeSelectedStories: "storytransformer.client.mergeSelectedStories",
  recheckWorkspace: "storytransformer.client.recheckWorkspace",
  loadModel: "storytransformer.client.loadModel",
  unloadModel: "storytransformer.client.unloadModel",
  runModelChecks: "storytransformer.client.runModelChecks",
  openReport: "storytransformer.client.openReport",
} as const;

/** The server's commands (workspace/executeCommand). */
export const SERVER_COMMANDS = {
  recheckWorkspace: "storytransformer.recheckWorkspace",
  loadModel: "storytransformer.loadModel",
  unloadModel: "storytransformer.unloadModel",
  mergeStories: "storytransformer.mergeStories",
  runModelChecks: "storytransformer.runModelChecks",
} as const;

/** The slice of the `vscode` API that the unit-tested modules touch; tests set `extensionsById`. */
export const extensionsById = new Map<string, unknown>();

export const extensions = {
  getExtension: (id: string) => extensionsById.get(id),
};

export class Disposable {
  constructor(private readonly onDispose: () => void) {}
  dispose(): void {
    this.onDispose();
  }
}

export class Uri {
  private constructor(readonly fsPath: string) {}
  static file(path: string): Uri {
    return new Uri(path);
  }
}

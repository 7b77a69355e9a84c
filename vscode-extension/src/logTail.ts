/** Keeps the last lines the server wrote to stderr, to quote them when it crashes at start. */
export class LogTail {
  private readonly lines: string[] = [];

  constructor(private readonly limit = 20) {}

  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.limit) this.lines.splice(0, this.lines.length - this.limit);
  }

  clear(): void {
    this.lines.length = 0;
  }

  last(count = this.limit): string[] {
    return this.lines.slice(-count);
  }
}

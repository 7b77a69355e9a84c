/** Arguments of `storytransformer.mergeStories`: one {uri, line} per selected non-blank line, each
 * line once, in document order. Multi-cursor selections count too. Pure. */

export interface StoryRef {
  uri: string;
  line: number;
}

export interface LineSpan {
  startLine: number;
  endLine: number;
  /** The selection ends at column 0 of endLine (a whole-line selection): endLine is not included. */
  endsAtLineStart: boolean;
}

export function mergeArguments(uri: string, spans: readonly LineSpan[], isBlank: (line: number) => boolean): StoryRef[] {
  const lines = new Set<number>();
  for (const span of spans) {
    const last = span.endsAtLineStart && span.endLine > span.startLine ? span.endLine - 1 : span.endLine;
    for (let line = span.startLine; line <= last; line++) if (!isBlank(line)) lines.add(line);
  }
  return [...lines].sort((a, b) => a - b).map((line) => ({ uri, line }));
}

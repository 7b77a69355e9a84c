/** Which files are user-story files: the `storytransformer.files` glob patterns, turned into a
 * document selector for the language client and a matcher for lazy server start. Pure (no vscode). */

export const DEFAULT_FILE_PATTERNS: readonly string[] = [
  "*.story.md",
  "*.stories.md",
  "*.feature",
  "stories/**/*.md",
  "*.stories.txt",
];

export interface PatternFilter {
  scheme: string;
  pattern: string;
}

/** VS Code matches a filter's glob against the whole path, so a bare `*.story.md` would match
 * nothing: anchor relative patterns anywhere in the tree with a leading `**\/`. */
export function anchorPattern(pattern: string): string {
  const p = pattern.trim().replace(/\\/g, "/");
  if (p.startsWith("**/") || p.startsWith("/") || /^[A-Za-z]:\//.test(p)) return p;
  return `**/${p.replace(/^\.\//, "")}`;
}

export function documentSelector(patterns: readonly string[]): PatternFilter[] {
  const filters: PatternFilter[] = [];
  for (const pattern of patterns) {
    if (!pattern.trim()) continue;
    for (const scheme of ["file", "untitled"]) {
      filters.push({ scheme, pattern: anchorPattern(pattern) });
    }
  }
  return filters;
}

/** One glob for `workspace.findFiles`: `{a,b,c}` over the anchored patterns. */
export function workspaceGlob(patterns: readonly string[]): string {
  const anchored = patterns.filter((p) => p.trim()).map(anchorPattern);
  return anchored.length === 1 ? anchored[0] : `{${anchored.join(",")}}`;
}

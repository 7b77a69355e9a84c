import { describe, expect, it } from "vitest";
import { anchorPattern, DEFAULT_FILE_PATTERNS, documentSelector, workspaceGlob } from "../src/files";
import { mergeArguments } from "../src/merge";

describe("file patterns", () => {
  it("anchors relative patterns at any depth and leaves anchored ones alone", () => {
    expect(anchorPattern("*.story.md")).toBe("**/*.story.md");
    expect(anchorPattern("stories/**/*.md")).toBe("**/stories/**/*.md");
    expect(anchorPattern("./backlog/*.txt")).toBe("**/backlog/*.txt");
    expect(anchorPattern("**/*.feature")).toBe("**/*.feature");
    expect(anchorPattern("/abs/*.txt")).toBe("/abs/*.txt");
    expect(anchorPattern("C:\\b\\*.txt")).toBe("C:/b/*.txt");
  });

  it("selects saved and untitled documents for each pattern", () => {
    const selector = documentSelector(["*.story.md", " "]);
    expect(selector).toEqual([
      { scheme: "file", pattern: "**/*.story.md" },
      { scheme: "untitled", pattern: "**/*.story.md" },
    ]);
    expect(documentSelector(DEFAULT_FILE_PATTERNS)).toHaveLength(DEFAULT_FILE_PATTERNS.length * 2);
  });

  it("joins patterns into one glob for findFiles", () => {
    expect(workspaceGlob(["*.feature"])).toBe("**/*.feature");
    expect(workspaceGlob(["*.feature", "stories/**/*.md"])).toBe("{**/*.feature,**/stories/**/*.md}");
  });
});

describe("mergeArguments", () => {
  const blank = new Set([2]);
  const isBlank = (line: number) => blank.has(line);

  it("gives one {uri, line} per selected non-blank line, in order, without repeats", () => {
    const refs = mergeArguments(
      "file:///b.story.md",
      [
        { startLine: 3, endLine: 4, endsAtLineStart: false },
        { startLine: 0, endLine: 3, endsAtLineStart: false },
      ],
      isBlank,
    );
    expect(refs).toEqual([0, 1, 3, 4].map((line) => ({ uri: "file:///b.story.md", line })));
  });

  it("leaves out the line a whole-line selection ends on", () => {
    const refs = mergeArguments("u", [{ startLine: 5, endLine: 7, endsAtLineStart: true }], isBlank);
    expect(refs.map((r) => r.line)).toEqual([5, 6]);
  });

  it("counts each cursor of a multi-cursor selection as its line", () => {
    const cursors = [9, 12].map((line) => ({ startLine: line, endLine: line, endsAtLineStart: true }));
    expect(mergeArguments("u", cursors, isBlank).map((r) => r.line)).toEqual([9, 12]);
  });
});

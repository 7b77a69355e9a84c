"""Markdown: stories as list items or as paragraphs under a heading.

- ``- As a user, I want ...`` (any bullet or number, optional ``[ ]`` checkbox,
  optional id such as ``US-12:``); indented continuation lines belong to it.
- ``## US-12: Title`` followed by a paragraph starting "As a ...": the heading's id
  is the story's id.
- List items nested under a story, or under an "Acceptance criteria" heading or
  label inside the story's section, are its acceptance criteria.
- ``<!-- storytransformer: ignore CODE -->`` on the line above (or the same line).
"""

from __future__ import annotations

import re

from ..lines import split_lines
from ..parse import MEANS_MARKER, ROLE_MARKER, Segment
from ..story import SourceFile
from .base import StoryBuilder, line_segment, parse_suppression, split_explicit_id

HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
LIST_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?")
FENCE = re.compile(r"^\s*(```|~~~)")
COMMENT = re.compile(r"<!--(.*?)-->")
CRITERIA_LABEL = re.compile(r"^\s*(?:\*\*|__)?acceptance\s+criteria\b", re.IGNORECASE)


def looks_like_story(text: str) -> bool:
    return bool(ROLE_MARKER.match(text)) or bool(MEANS_MARKER.search(text[:80]))


def read_markdown(path: str, text: str) -> SourceFile:
    lines = split_lines(text)
    builder = StoryBuilder(path, lines, "markdown")
    source = SourceFile(path, lines, format="markdown")
    file_codes: set[str] = set()

    # Pass 1: group lines into blocks (a story candidate with its continuation lines).
    blocks: list[dict] = []
    heading_id: str | None = None
    in_fence = False
    in_criteria = False
    pending: frozenset[str] = frozenset()
    current: dict | None = None  # the block being extended by continuation lines
    last_story: dict | None = None

    def close():
        nonlocal current
        current = None

    for i, line in enumerate(lines):
        if FENCE.match(line):
            in_fence = not in_fence
            close()
            continue
        if in_fence:
            continue
        comment = COMMENT.search(line)
        if comment:
            sup = parse_suppression(comment.group(1))
            if sup:
                if sup[0]:
                    file_codes |= sup[1]
                elif COMMENT.sub("", line).strip():
                    pending = pending | sup[1]  # same line as the story: applied below
                else:
                    pending = pending | sup[1]
                    continue
            line = COMMENT.sub(lambda m: " " * len(m.group(0)), line)
        if not line.strip():
            close()
            continue
        h = HEADING.match(line)
        if h:
            close()
            title = h.group(2)
            in_criteria = bool(CRITERIA_LABEL.match(title))
            if not in_criteria:
                heading_id, _ = split_explicit_id(title + " x")
                last_story = None
            continue
        li = LIST_ITEM.match(line)
        if li:
            indent = len(li.group(1).expandtabs(4))
            body_start = li.end()
            nested = last_story is not None and indent > last_story["indent"]
            if last_story is not None and (nested or (in_criteria and not looks_like_story(line[body_start:]))):
                last_story["criteria"].append(line[body_start:].strip())
                close()
                continue
            sid, skip = split_explicit_id(line[body_start:])
            if looks_like_story(line[body_start + skip :]):
                current = {"segments": [line_segment(i, line, body_start + skip)], "id": sid,
                           "indent": indent, "criteria": [], "suppressed": pending}
                blocks.append(current)
                last_story = current
                in_criteria = False
            else:
                close()
            pending = frozenset()
            continue
        if current is not None and not ROLE_MARKER.match(line):
            current["segments"].append(line_segment(i, line, 0))
            continue
        if CRITERIA_LABEL.match(line):
            in_criteria = True
            continue
        sid, skip = split_explicit_id(line)
        if looks_like_story(line[skip:]) and (ROLE_MARKER.match(line[skip:]) or sid):
            current = {"segments": [line_segment(i, line, skip)], "id": sid or heading_id,
                       "indent": 0, "criteria": [], "suppressed": pending}
            heading_id = None
            blocks.append(current)
            last_story = current
            in_criteria = False
        pending = frozenset()

    for block in blocks:
        segments: list[Segment] = block["segments"]
        story = builder.build(segments, story_id=block["id"], acceptance=tuple(block["criteria"]),
                              suppressed=block["suppressed"])
        if story:
            source.stories.append(story)
    source.suppressed = frozenset(file_codes)
    return source

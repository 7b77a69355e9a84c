"""Plain text: one story per line. Blank lines and ``#`` or ``//`` comment lines are skipped."""

from __future__ import annotations

import re

from ..lines import split_lines
from ..story import SourceFile
from .base import StoryBuilder, line_segment, parse_suppression, split_explicit_id

COMMENT = re.compile(r"^\s*(#(?!\d)|//)")
TRAILING_COMMENT = re.compile(r"\s+(?:#|//)\s*storytransformer:.*$", re.IGNORECASE)


def read_text(path: str, text: str) -> SourceFile:
    lines = split_lines(text)
    builder = StoryBuilder(path, lines, "text")
    source = SourceFile(path, lines, format="text")
    pending: frozenset[str] = frozenset()
    file_codes: set[str] = set()
    for i, line in enumerate(lines):
        if not line.strip():
            pending = frozenset()
            continue
        if COMMENT.match(line):
            sup = parse_suppression(line)
            if sup:
                file_wide, codes = sup
                if file_wide:
                    file_codes |= codes
                else:
                    pending = pending | codes
            continue
        suppressed = pending
        pending = frozenset()
        end = len(line)
        tm = TRAILING_COMMENT.search(line)
        if tm:
            sup = parse_suppression(tm.group(0))
            suppressed = suppressed | (sup[1] if sup else frozenset())
            end = tm.start()
        story_id, skip = split_explicit_id(line[:end])
        story = builder.build([line_segment(i, line, skip, end)], story_id=story_id, suppressed=suppressed)
        if story:
            source.stories.append(story)
    source.suppressed = frozenset(file_codes)
    return source

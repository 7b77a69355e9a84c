"""What every reader shares: story ids, suppression comments, building a Story."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from collections import Counter
from pathlib import PurePath

from ..parse import Locator, Segment, parse_parts
from ..story import Position, Range, Story

# "US-12", "STORY-7", "ABC-123", "#12" at the start of a story, optionally in brackets; "US-3a" for a
# story split from US-3.
EXPLICIT_ID = re.compile(
    r"^\s*(?:\[(?P<b>[A-Za-z][A-Za-z0-9_]*-\d+[a-z]?|#\d+)\]|(?P<p>[A-Z][A-Z0-9_]*-\d+[a-z]?|#\d+))\s*[:.)\-–]?\s+(?=\S)"
)
SUPPRESSION = re.compile(r"storytransformer:\s*ignore(?P<file>-file)?\b(?P<codes>[\s,A-Za-z0-9*-]*)", re.IGNORECASE)


def parse_suppression(comment: str) -> tuple[bool, frozenset[str]] | None:
    """``(file_wide, codes)`` for a suppression comment, ``None`` if it is not one.

    No codes means every code ("*").
    """
    m = SUPPRESSION.search(comment)
    if not m:
        return None
    codes = frozenset(c.upper() for c in re.split(r"[\s,]+", m.group("codes")) if c and c != "-->")
    return bool(m.group("file")), codes or frozenset({"*"})


@lru_cache(maxsize=131072)
def normalise(text: str) -> str:
    """Lower case, words only: what 'the same story' means for ids and duplicates."""
    return " ".join(re.findall(r"[\w']+", text.lower()))


class StoryBuilder:
    """Builds the stories of one file, giving each a stable id."""

    def __init__(self, path: str, lines: list[str], fmt: str):
        self.path = path
        self.lines = lines
        self.fmt = fmt
        self.stem = PurePath(path).stem.split(".")[0] or "story"
        self.seen: Counter[str] = Counter()
        self.line_texts = dict(enumerate(lines))

    def derived_id(self, text: str) -> str:
        digest = hashlib.blake2b(normalise(text).encode(), digest_size=4).hexdigest()
        self.seen[digest] += 1
        n = self.seen[digest]
        return f"{self.stem}-{digest}" + (f"-{n}" if n > 1 else "")

    def build(
        self,
        segments: list[Segment],
        *,
        story_id: str | None = None,
        acceptance: tuple[str, ...] = (),
        suppressed: frozenset[str] = frozenset(),
    ) -> Story | None:
        segments = [s for s in segments if s.text.strip()]
        if not segments:
            return None
        key = tuple((seg, self.line_texts[seg.line]) for seg in segments)
        parsed, text = _parse(key)
        return Story(
            id=story_id or self.derived_id(text),
            file=self.path,
            text=text,
            range=_span(segments, self.line_texts),
            role=parsed.role,
            means=parsed.means,
            ends=parsed.ends,
            trailing=parsed.trailing,
            explicit_id=story_id is not None,
            format=self.fmt,
            acceptance_criteria=acceptance,
            suppressed=suppressed,
        )


@lru_cache(maxsize=65536)
def _parse(key: tuple) -> tuple:
    """Parse one story's segments; remembered, so re-reading an edited file re-parses only changed lines."""
    segments = [seg for seg, _ in key]
    loc = Locator(segments, {seg.line: line for seg, line in key})
    return parse_parts(loc), loc.text


def split_explicit_id(text: str) -> tuple[str | None, int]:
    """The explicit id at the start of ``text`` and how many characters it takes."""
    m = EXPLICIT_ID.match(text)
    if not m:
        return None, 0
    return m.group("b") or m.group("p"), m.end()


def line_segment(line: int, text: str, start: int, end: int | None = None) -> Segment:
    """The segment of ``text[start:end]`` with surrounding whitespace removed."""
    end = len(text) if end is None else end
    chunk = text[start:end]
    lead = len(chunk) - len(chunk.lstrip())
    return Segment(line, start + lead, chunk.strip())


def _span(segments: list[Segment], line_texts: dict[int, str]) -> Range:
    """The range from the first character to the last one over all segments, in file order."""
    first = min(segments, key=lambda s: (s.line, s.column))
    last = max(segments, key=lambda s: (s.line, s.column))
    return Range(
        Position.in_line(first.line, line_texts[first.line], first.column),
        Position.in_line(last.line, line_texts[last.line], last.column + len(last.text)),
    )

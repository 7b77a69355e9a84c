"""The story model: plain, immutable data that every other part reads.

Positions are 0-based. ``character`` counts Unicode code points (what Python
slicing uses); ``utf16`` counts UTF-16 code units, which is what LSP clients
use by default. Both are computed once by the reader, so nothing downstream
has to re-read the source text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

PartKind = Literal["role", "means", "ends", "trailing"]


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


class Position(NamedTuple):
    """A tuple, not a dataclass: workspaces hold millions and tuples are cheap to build."""

    line: int
    character: int
    utf16: int = -1

    @staticmethod
    def in_line(line: int, line_text: str, character: int) -> "Position":
        return Position(line, character, utf16_len(line_text[:character]))


class Range(NamedTuple):
    start: Position
    end: Position

    def contains_line(self, line: int) -> bool:
        return self.start.line <= line <= self.end.line


class Part(NamedTuple):
    """One of role, means or ends, with the marker that introduced it ("As a", "I want to")."""

    kind: PartKind
    text: str
    range: Range
    marker: str
    marker_range: Range


@dataclass(frozen=True, slots=True)
class Story:
    """One user story as written in a file.

    ``text`` is the story sentence(s) as written (without list bullets, ids or
    Gherkin keywords); ``range`` covers exactly that text in the file.
    ``trailing`` is text after the story's last sentence on the same span (an
    extra sentence, a note) that the minimal rule reports.
    """

    id: str
    file: str
    text: str
    range: Range
    role: Part | None = None
    means: Part | None = None
    ends: Part | None = None
    trailing: Part | None = None
    explicit_id: bool = False
    format: str = "text"
    acceptance_criteria: tuple[str, ...] = ()
    suppressed: frozenset[str] = frozenset()

    @property
    def line(self) -> int:
        return self.range.start.line

    def parts(self) -> tuple[Part, ...]:
        return tuple(p for p in (self.role, self.means, self.ends) if p is not None)

    def is_suppressed(self, code: str) -> bool:
        return "*" in self.suppressed or code in self.suppressed


@dataclass(slots=True)
class SourceFile:
    """A parsed file: its stories and the lines they were read from."""

    path: str
    lines: list[str]
    stories: list[Story] = field(default_factory=list)
    format: str = "text"
    # File-level suppressions ("storytransformer: ignore-file CODE").
    suppressed: frozenset[str] = frozenset()
    # Digest of the bytes read from disk ("" for unsaved editor text): the result cache's key.
    digest: str = ""


def sub_range(text: str, rng: Range, start: int, end: int) -> Range:
    """The range of ``text[start:end]``, where ``text`` is what ``rng`` covers.

    Exact when the text before ``end`` is on one line; otherwise the whole range
    (multi-line text does not keep its per-line columns).
    """
    if "\n" in text[:end]:
        return rng
    s, line = rng.start, rng.start.line
    u = s.utf16 if s.utf16 >= 0 else s.character
    return Range(
        Position(line, s.character + start, u + utf16_len(text[:start])),
        Position(line, s.character + end, u + utf16_len(text[:end])),
    )

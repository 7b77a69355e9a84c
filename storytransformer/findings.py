"""The one finding type used by the CLI, the language server and the daemon."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from .story import Range, Story


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    HINT = "hint"


@dataclass(frozen=True, slots=True)
class Related:
    """Another story that a finding refers to (the duplicate, the conflicting story)."""

    file: str
    range: Range
    story_id: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class TextEdit:
    range: Range
    new_text: str


@dataclass(frozen=True, slots=True)
class Fix:
    """A safe, deterministic change. Its edits stay inside the story's own lines."""

    title: str
    edits: tuple[TextEdit, ...]

    @staticmethod
    def replace(title: str, rng: Range, new_text: str) -> "Fix":
        return Fix(title, (TextEdit(rng, new_text),))


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    criterion: str
    severity: Severity
    message: str
    file: str
    range: Range
    story_id: str
    related: tuple[Related, ...] = ()
    fix: Fix | None = None
    data: dict = field(default_factory=dict, compare=False, hash=False)

    @staticmethod
    def on(story: Story, code: str, criterion: str, severity: Severity, message: str,
           rng: Range | None = None, **kw) -> "Finding":
        return Finding(code, criterion, severity, message, story.file, rng or story.range, story.id, **kw)

    def sort_key(self):
        return (self.file, self.range.start.line, self.range.start.character, self.code)


def shift_range(rng: Range, lines: int) -> Range:
    return Range(rng.start._replace(line=rng.start.line + lines), rng.end._replace(line=rng.end.line + lines))


def shifted(finding: Finding, lines: int) -> Finding:
    """The same finding ``lines`` further down (its story moved); related stories stay where they are."""
    fix = finding.fix
    if fix is not None:
        fix = Fix(fix.title, tuple(TextEdit(shift_range(e.range, lines), e.new_text) for e in fix.edits))
    return replace(finding, range=shift_range(finding.range, lines), fix=fix)


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file that could not be read (``error``) or was skipped on purpose (``notice``)."""

    path: str
    message: str
    line: int | None = None  # 1-based, where known
    kind: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"

"""Applying text edits to a file's text, and writing files safely.

Writes go through a temporary file in the same directory and ``os.replace``,
so a crash leaves the old file or the new one, never a mix; and a write is
refused when the file changed on disk since it was read.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Iterable

from .findings import Fix, TextEdit
from .lines import line_starts, strip_break


class StaleFileError(RuntimeError):
    """The file changed on disk after it was read: writing would lose someone's work."""


def newline_of(text: str) -> str:
    i = text.find("\n")
    return "\r\n" if i > 0 and text[i - 1] == "\r" else "\n"


def _line_starts(text: str) -> list[int]:
    """Where each line starts (lines as LSP counts them), then the end of the text."""
    return line_starts(text) + [len(text)]


def apply_edits(text: str, edits: Iterable[TextEdit]) -> str:
    """``text`` with non-overlapping ``edits`` applied (positions in code points)."""
    starts = _line_starts(text)
    nl = newline_of(text)

    def offset(pos) -> int:
        if pos.line >= len(starts) - 1:
            return len(text)
        line_start, next_start = starts[pos.line], starts[pos.line + 1]
        content_end = len(strip_break(text[line_start:next_start])) + line_start
        return min(line_start + pos.character, content_end) if pos.character >= 0 else line_start

    spans = sorted(((offset(e.range.start), offset(e.range.end), e.new_text) for e in edits), reverse=True)
    for (s1, _e1, _), (_s2, e2, _) in zip(spans, spans[1:]):
        if e2 > s1:
            raise ValueError("overlapping edits")
    return _apply(text, spans, nl)


def _apply(text: str, spans, nl: str) -> str:
    pieces = []
    cursor = len(text)
    for s, e, new in spans:  # reverse order
        pieces.append(text[e:cursor])
        pieces.append(new.replace("\n", nl) if nl != "\n" else new)
        cursor = s
    pieces.append(text[:cursor])
    return "".join(reversed(pieces))


def choose_fixes(fixes: Iterable[Fix]) -> list[Fix]:
    """A set of fixes whose edits touch disjoint lines (first come, first served)."""
    taken: list[tuple[int, int]] = []
    chosen = []
    for fix in fixes:
        lines = [(e.range.start.line, e.range.end.line) for e in fix.edits]
        if any(a <= d and c <= b for a, b in lines for c, d in taken):
            continue
        taken.extend(lines)
        chosen.append(fix)
    return chosen


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _remove_stale_temporaries(directory: str, name: str, older_than_s: float) -> None:
    """Temporary files left by a write that was killed before its rename."""
    import time

    now = time.time()
    for entry in os.scandir(directory):
        if entry.name.startswith(f".{name}.") and entry.name.endswith(".tmp"):
            try:
                if now - entry.stat().st_mtime >= older_than_s:
                    os.unlink(entry.path)
            except OSError:
                pass


def atomic_write(path: str, text: str, expected_digest: str | None = None, stale_after_s: float = 600) -> None:
    """Replace ``path`` with ``text`` atomically; refuse if its content is no longer ``expected_digest``."""
    directory = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporaries(directory, os.path.basename(path), stale_after_s)
    if expected_digest is not None:
        with open(path, "rb") as f:
            if digest(f.read()) != expected_digest:
                raise StaleFileError(f"{path}: changed on disk since it was read; not overwritten")
    mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is None:  # a new file gets the permissions any new file would (mkstemp makes 0600)
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        if expected_digest is not None:  # last look right before the rename
            with open(path, "rb") as f:
                if digest(f.read()) != expected_digest:
                    raise StaleFileError(f"{path}: changed on disk since it was read; not overwritten")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

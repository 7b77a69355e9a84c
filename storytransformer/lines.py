"""The one rule for splitting a document into lines: ``\\n``, ``\\r\\n`` and ``\\r``, as LSP counts them.

``str.splitlines()`` also breaks at U+2028, U+2029, U+0085, VT, FF and \\x1c-\\x1e,
characters that text pasted from PDFs carries. An editor (and the LSP) does not:
for it they are ordinary characters inside a line. Line numbers computed with
``splitlines()`` then point below the line the editor means, and a fix edits the
wrong story. Every reader, rule and server function that turns document text
into lines, or positions into offsets, uses this module instead.
"""

from __future__ import annotations

import re

LINE_BREAK = re.compile(r"\r\n|\r|\n")
BREAK_CHARS = "\r\n"


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` without their breaks; like ``str.splitlines()`` (no empty last line after a
    final break), but only ``\\n``, ``\\r\\n`` and ``\\r`` end a line."""
    lines = LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def split_lines_keepends(text: str) -> list[str]:
    """The lines of ``text`` with their breaks; joined they give ``text`` back."""
    out: list[str] = []
    start = 0
    for m in LINE_BREAK.finditer(text):
        out.append(text[start:m.end()])
        start = m.end()
    if start < len(text):
        out.append(text[start:])
    return out


def line_starts(text: str) -> list[int]:
    """The offset where each line starts, as LSP numbers lines: a text that ends with a break has an
    empty last line after it (``"a\\n"`` -> ``[0, 2]``)."""
    return [0] + [m.end() for m in LINE_BREAK.finditer(text)]


def strip_break(line: str) -> str:
    """``line`` without its line break (only ``\\n``, ``\\r\\n`` or ``\\r``)."""
    return line.rstrip(BREAK_CHARS)

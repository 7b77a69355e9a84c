"""Readers, one per format, chosen by file name or by the ``formats`` configuration."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import PurePosixPath

from ..config import Config
from ..story import SourceFile
from .csv import CsvColumns, CsvFormatError, read_csv
from .gherkin import read_gherkin
from .markdown import read_markdown
from .text import read_text

FORMATS = ("text", "markdown", "gherkin", "csv")
SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
            ".feature": "gherkin", ".csv": "csv", ".tsv": "csv"}


def detect_format(path: str, config: Config | None = None) -> str | None:
    """The format for ``path``: a configured glob wins over the file suffix."""
    posix = PurePosixPath(path.replace("\\", "/"))
    if config:
        for glob, fmt in config.formats.items():
            if posix.match(glob) or fnmatch(str(posix), glob):
                return fmt
    return SUFFIXES.get(posix.suffix.lower())


def read_source(path: str, text: str, config: Config | None = None, fmt: str | None = None) -> SourceFile:
    """Parse ``text`` (the content of ``path``) into a SourceFile.

    Raises ``ValueError`` with a clear message for content the reader cannot use.
    """
    fmt = fmt or detect_format(path, config) or "text"
    if fmt == "markdown":
        return read_markdown(path, text)
    if fmt == "gherkin":
        return read_gherkin(path, text)
    if fmt == "csv":
        cols = CsvColumns()
        if config:
            c = config.csv
            cols = CsvColumns(tuple(c.story_columns), tuple(c.id_columns), tuple(c.acceptance_columns))
        return read_csv(path, text, cols)
    return read_text(path, text)


__all__ = ["FORMATS", "CsvFormatError", "detect_format", "read_source"]

"""Small builders for core tests."""

from __future__ import annotations

from storytransformer.config import Config
from storytransformer.lint import Linter
from storytransformer.workspace import Workspace


def lint_texts(files: dict[str, str], config: Config | None = None):
    """Findings for in-memory files ``{path: text}`` (no disk cache)."""
    ws = Workspace(config or Config())
    for path, text in files.items():
        ws.set_text(path, text)
    return ws, Linter(ws, use_disk_cache=False).check()


def codes_on_line(findings, path: str, line: int) -> set[str]:
    """Codes of the findings on 1-based ``line`` of ``path``."""
    return {f.code for f in findings if f.file == path and f.range.start.line == line - 1}

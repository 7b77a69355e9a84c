"""Core types -> LSP types. The core's positions carry UTF-16 columns, which is what LSP uses."""

from __future__ import annotations

import os

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path

from storytransformer.findings import Finding, Related, Severity
from storytransformer.findings import TextEdit as CoreTextEdit
from storytransformer.story import Position as CorePosition
from storytransformer.story import Range as CoreRange

SOURCE = "storytransformer"

MAX_RELATED = 20  # a story repeated in 40 files: the first 20 places say enough

SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
    Severity.HINT: types.DiagnosticSeverity.Hint,
}


def uri_to_path(uri: str) -> str | None:
    """The normalised file-system path of a ``file:`` URI; None for other schemes."""
    path = to_fs_path(uri)
    if not path or not uri.startswith("file:"):
        return None
    return os.path.normpath(os.path.abspath(path))


def path_to_uri(path: str) -> str:
    return from_fs_path(os.path.abspath(path)) or path


def relative(path: str, roots: list[str]) -> str:
    """``path`` relative to the deepest workspace folder that holds it (as given otherwise)."""
    best = None
    for root in roots:
        rel = os.path.relpath(path, root)
        if rel != ".." and not rel.startswith(".." + os.sep) and (best is None or len(rel) < len(best)):
            best = rel
    return (best or path).replace(os.sep, "/")


def position(p: CorePosition) -> types.Position:
    return types.Position(line=p.line, character=p.utf16 if p.utf16 >= 0 else p.character)


def lsp_range(r: CoreRange) -> types.Range:
    return types.Range(start=position(r.start), end=position(r.end))


def whole_lines(r: CoreRange) -> types.Range:
    """The lines ``r`` touches, line breaks included: what deleting a story removes."""
    return types.Range(start=types.Position(r.start.line, 0), end=types.Position(r.end.line + 1, 0))


def same_lines(a: types.Range, b: types.Range) -> bool:
    """Whether two ranges share a line: stories are line-sized, so a cursor anywhere on one counts."""
    return a.start.line <= b.end.line and b.start.line <= a.end.line


def related_info(rel: Related) -> types.DiagnosticRelatedInformation:
    return types.DiagnosticRelatedInformation(
        location=types.Location(uri=path_to_uri(rel.file), range=lsp_range(rel.range)),
        message=rel.message or f"story {rel.story_id}",
    )


def diagnostic(f: Finding) -> types.Diagnostic:
    from storytransformer.rules import RULES

    rule = RULES.get(f.code)
    return types.Diagnostic(
        range=lsp_range(f.range),
        message=f.message,
        severity=SEVERITY.get(f.severity, types.DiagnosticSeverity.Warning),
        code=f.code,
        source=SOURCE,
        code_description=types.CodeDescription(href=rule.url) if rule else None,
        related_information=[related_info(r) for r in f.related[:MAX_RELATED]] or None,
        data={"story_id": f.story_id, "criterion": f.criterion, "fixable": f.fix is not None},
    )


def text_edit(e: CoreTextEdit) -> types.TextEdit:
    return types.TextEdit(range=lsp_range(e.range), new_text=e.new_text)


def document_edit(uri: str, version: int | None, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
    """A versioned edit: the client rejects it when the document has changed since ``version``."""
    return types.WorkspaceEdit(document_changes=[
        types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
            edits=edits,
        )
    ])

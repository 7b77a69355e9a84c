"""``source.fixAll.storytransformer``: every safe fix of a document in one edit, for fixes on save.

Which fixes are safe is the core's policy (:func:`storytransformer.fixes.applies_automatically`),
the same as ``storytransformer check --fix``: a split into several stories is never applied on save.

Editors wait for this action before saving, with no timeout, so it never
computes anything: it returns the fixes already computed for the document's
current version (and model rewrites already made for it, when the user opted
in), or nothing when the diagnostics are not up to date yet.
Duplicate deletions (ST6xx) are left out too: deleting a story on save is too surprising.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from storytransformer.fixes import applies_automatically

from .convert import document_edit, text_edit, uri_to_path

if TYPE_CHECKING:
    from .server_context import ServerContext

FIX_ALL = "source.fixAll.storytransformer"
TITLE = "StoryTransformer: fix all auto-fixable problems"


def _key(r: types.Range) -> tuple[int, int, int, int]:
    return (r.start.line, r.start.character, r.end.line, r.end.character)


def _clash(a: types.Range, b: types.Range) -> bool:
    a0, a1, b0, b1 = _key(a)[:2], _key(a)[2:], _key(b)[:2], _key(b)[2:]
    if a0 == a1 == b0 == b1:
        return True  # two insertions at one place
    return a0 < b1 and b0 < a1


def fix_all_edits(server: "ServerContext", path: str) -> tuple[int | None, list[types.TextEdit]] | None:
    """Non-overlapping edits for the document as it is now, or None when nothing is ready for this version."""
    pub = server.diagnostics.current(path)
    if pub is None:
        return None
    chosen: list[types.TextEdit] = []
    if server.options.fix_on_save.model:
        for (p, version, _story), (rng, text) in list(server.model_rewrites.items()):
            if p == path and version == pub.version:
                chosen.append(types.TextEdit(range=rng, new_text=text))
    for finding in pub.findings.findings:
        if not applies_automatically(finding, on_save=True):
            continue  # the same policy as `check --fix`: safe fixes only, and no deletions on save
        edits = [text_edit(e) for e in finding.fix.edits]
        if any(_clash(e.range, c.range) for e in edits for c in chosen):
            continue  # the next save applies it, on the text this one produced
        chosen.extend(edits)
    chosen.sort(key=lambda e: _key(e.range))
    return pub.version, chosen


def fix_all_action(server: "ServerContext", uri: str) -> types.CodeAction | None:
    path = uri_to_path(uri)
    if path is None or server.open_document(uri) is None:
        return None
    ready = fix_all_edits(server, path)
    if ready is None:
        return None
    version, edits = ready
    if not edits:
        return None
    return types.CodeAction(title=TITLE, kind=FIX_ALL, edit=document_edit(uri, version, edits))


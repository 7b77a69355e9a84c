"""``source.fixAll.storytransformer``: every fix of a document that the fix-on-save policy allows, in
one edit, for fixes on save.

Which fixes apply is the core's fix policy (:class:`storytransformer.checking.FixPolicy`), the object
``storytransformer check --fix`` uses too; on save it is ``fixOnSave.kinds`` (default: safe fixes
only, so a split into several stories or a duplicate deletion is never applied on save unless the
user asks for it). Overlapping fixes are resolved by the core too (whole lines, first come first
served, :func:`storytransformer.edits.choose_fixes`), exactly as ``check --fix`` resolves them.

Editors wait for this action before saving, with no timeout, so it never
computes anything: it returns the fixes already computed for the document's
current version (and model rewrites already made for it, when the user opted
in), or nothing when the diagnostics are not up to date yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from .convert import document_edit, text_edit, uri_to_path

if TYPE_CHECKING:
    from .server_context import ServerContext

FIX_ALL = "source.fixAll.storytransformer"
TITLE = "StoryTransformer: fix all auto-fixable problems"


def _key(r: types.Range) -> tuple[int, int, int, int]:
    return (r.start.line, r.start.character, r.end.line, r.end.character)


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
    # the same policy object and overlap resolution as `check --fix`; a fix left out applies on the next save
    taken = [(e.range.start.line, e.range.end.line) for e in chosen]
    for finding in server.options.fix_on_save.policy.choose(pub.findings.findings, taken):
        chosen.extend(text_edit(e) for e in finding.fix.edits)
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


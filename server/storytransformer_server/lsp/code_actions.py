"""Code actions: a quick fix per fixable finding, "Merge with <file:line>" for findings whose rule is a
merge candidate (declared on the rule: duplicates, overlaps), a preview of each deterministic merge
('Merge into: "<merged story>" (with <file:line>)', the first and at most three alternatives, so the
user picks one before anything is replaced),
"Rewrite as a story: <skeleton>" for a line that is not a story (its own words, placeholders for the
role and benefit: no model), "Rewrite with model" for a story with findings, and fix-all (see
:mod:`.fix_all`).

Quick fixes carry their edit at once. The model actions carry only a title and
``data``; their edit is computed by ``codeAction/resolve`` when the user picks
one. Every edit is a versioned ``TextDocumentEdit``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from storytransformer.checking import is_merge_candidate
from storytransformer.places import place

from .convert import document_edit, lsp_range, path_to_uri, same_lines, text_edit, uri_to_path, whole_lines
from . import ignore
from .fix_all import FIX_ALL, fix_all_action
from .model_adapter import ModelUnavailable, failure_message, log_failure

if TYPE_CHECKING:
    from .server_context import ServerContext

log = logging.getLogger(__name__)
KINDS = [types.CodeActionKind.QuickFix, types.CodeActionKind.RefactorRewrite, FIX_ALL]


def wanted(kind: str, only: list[str] | None, explicit: bool = False) -> bool:
    """``context.only`` semantics: a kind is wanted if it equals or refines a requested kind.

    ``explicit`` kinds (source actions) are only returned when asked for by name.
    """
    if not only:
        return not explicit
    return any(kind == o or kind.startswith(o + ".") for o in only)


def quick_fixes(server: "ServerContext", uri: str, pub, rng: types.Range, only,
                stories: dict | None = None) -> list[types.CodeAction]:
    actions: list[types.CodeAction] = []
    model_on = server.options.daemon.enabled
    offset = len(pub.diagnostics) - len(pub.findings.findings)
    rewrite_for: dict[str, types.Diagnostic] = {}
    here: list = []
    for i, finding in enumerate(pub.findings.findings):
        if not same_lines(lsp_range(finding.range), rng):
            continue
        diag = pub.diagnostics[i + offset]
        here.append((finding, diag))
        if finding.fix is not None and wanted(types.CodeActionKind.QuickFix, only):
            actions.append(types.CodeAction(
                title=finding.fix.title, kind=types.CodeActionKind.QuickFix, diagnostics=[diag],
                is_preferred=True,
                edit=document_edit(uri, pub.version, [text_edit(e) for e in finding.fix.edits])))
        if model_on and is_merge_candidate(finding) and wanted(types.CodeActionKind.QuickFix, only):
            root = server.core.config_for(finding.file).root
            for rel in finding.related:
                actions.append(types.CodeAction(
                    title=f"Merge with {place(rel.file, rel.range.start.line, root)}",
                    kind=types.CodeActionKind.QuickFix, diagnostics=[diag],
                    data={"action": "merge", "uri": uri, "version": pub.version, "story": finding.story_id,
                          "with": {"file": rel.file, "id": rel.story_id}}))
        rewrite_for.setdefault(finding.story_id, diag)
    if here and wanted(types.CodeActionKind.QuickFix, only):
        # after the fixes, so an editor's first (preferred) action stays the fix
        actions.extend(ignore.actions(server, uri, pub, [f for f, _ in here], [d for _, d in here], stories or {}))
    if wanted(types.CodeActionKind.RefactorRewrite, only):
        actions.extend(skeleton_actions(server, uri, pub, rewrite_for, stories or {}))
    if model_on and wanted(types.CodeActionKind.RefactorRewrite, only):
        for story_id, diag in rewrite_for.items():
            actions.append(types.CodeAction(
                title="Rewrite with model", kind=types.CodeActionKind.RefactorRewrite, diagnostics=[diag],
                data={"action": "rewrite", "uri": uri, "version": pub.version, "story": story_id}))
    return actions


def skeleton_actions(server: "ServerContext", uri: str, pub, diag_of: dict[str, types.Diagnostic],
                     stories: dict) -> list[types.CodeAction]:
    """For each story here that is not a story (no 'I want', or no role): the skeleton built from its own
    words (:func:`storytransformer.fixes.skeleton_fix`), its text in the title. Deterministic, so offered
    with no model; never preferred and never applied on save: the user fills the placeholders."""
    from storytransformer.fixes import skeleton_fix

    doc = server.open_document(uri)
    if doc is None:
        return []
    actions = []
    for story_id, diag in diag_of.items():
        story = stories.get(story_id)
        fix = skeleton_fix(story, list(doc.lines)) if story is not None else None
        if fix is not None:
            actions.append(types.CodeAction(
                title=fix.title if len(fix.title) <= PREVIEW_CHARS + 40 else preview(fix.title, PREVIEW_CHARS + 40),
                kind=types.CodeActionKind.RefactorRewrite, diagnostics=[diag],
                edit=document_edit(uri, pub.version, [text_edit(e) for e in fix.edits])))
    return actions


async def resolve_model_action(server: "ServerContext", action: types.CodeAction) -> types.CodeAction:
    data: Any = action.data
    if not isinstance(data, dict) or data.get("action") not in ("merge", "rewrite"):
        return action
    uri, version, story_id = data.get("uri"), data.get("version"), data.get("story")
    path = uri_to_path(uri) if isinstance(uri, str) else None
    if path is None or not isinstance(story_id, str):
        return action
    core = server.core
    story = await core.run(core.find_story, path, story_id, version)
    if story is None:
        server.show(f"'{action.title}': the story is no longer there as it was; ask for the action again",
                    types.MessageType.Warning)
        return action
    try:
        if data["action"] == "merge":
            other_ref = data.get("with") or {}
            other = await core.run(core.find_story, str(other_ref.get("file")), str(other_ref.get("id")), "any")
            if other is None:
                server.show(f"'{action.title}': the other story is gone", types.MessageType.Warning)
                return action
            texts = await server.propose("propose/merge", {"stories": [
                {"file": story.file, "id": story.id}, {"file": other.file, "id": other.id}]},
                [story.file, other.file])
            merged = keeping_merge(server, action.title, texts, [story, other])
            if merged is None:
                return action
            other_uri = path_to_uri(other.file)
            action.edit = merge_edit(server, [(uri, story), (other_uri, other)],
                                     {uri: version, other_uri: core.core_version.get(other.file)}, merged)
        else:
            texts = await server.propose("propose/rewrite", {"file": story.file, "id": story.id}, [story.file])
            action.edit = document_edit(uri, version, [types.TextEdit(range=lsp_range(story.range), new_text=texts[0])])
            server.model_rewrites[(path, version, story.id)] = (lsp_range(story.range), texts[0])
    except ModelUnavailable as e:
        log_failure(action.title, e)
        server.show(failure_message(action.title, e), types.MessageType.Warning)
    return action


PREVIEW_CHARS = 120


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """``text`` whole when short; else its start and its end, cut at words, joined by an ellipsis:
    a merge differs from its sources at the end (the joined benefits) as often as at the start."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    half = (limit - 3) // 2
    head = text[:half].rsplit(" ", 1)[0]
    tail = text[-half:].split(" ", 1)[-1]
    return f"{head} … {tail}"


async def merge_previews(server: "ServerContext", uri: str, pub, rng: types.Range, stories: dict) -> list[types.CodeAction]:
    """For each merge-candidate finding on these lines and each story it names: the deterministic
    merges (:func:`storytransformer.similarity.merge.merge_proposals`, the first and at most three
    alternatives), each an action whose title shows the merged story and whose edit replaces this
    story with it and deletes the other. Duplicates (ST601-ST603) may keep one wording of a part; a
    benefit only for one the daemon found alike (the finding's ``benefit_cosines`` and ``means_cosines``)."""
    from storytransformer.similarity.benefits import same_need_by_cosine
    from storytransformer.similarity.merge import SAME_NEED_CODES, merge_proposals

    core = server.core
    actions: list[types.CodeAction] = []
    offset = len(pub.diagnostics) - len(pub.findings.findings)
    for i, finding in enumerate(pub.findings.findings):
        if not is_merge_candidate(finding) or not same_lines(lsp_range(finding.range), rng):
            continue
        story = stories.get(finding.story_id)
        if story is None:
            continue
        root = core.config_for(finding.file).root
        cosines = (finding.data or {}).get("benefit_cosines") or []
        means_cosines = (finding.data or {}).get("means_cosines") or []
        for j, rel in enumerate(finding.related):
            other = await core.run(core.find_story, rel.file, rel.story_id, "any")
            if other is None or other.id == story.id and other.file == story.file:
                continue
            where = place(rel.file, rel.range.start.line, root)
            same_need = finding.code in SAME_NEED_CODES and same_need_by_cosine(
                cosines[j] if j < len(cosines) else None, means_cosines[j] if j < len(means_cosines) else None)
            merges = [m for m in merge_proposals([story, other], same_need) if m.kept]
            merges = [m for m in merges if " ".join(m.text.split()) != " ".join(story.text.split())]
            other_uri = path_to_uri(other.file)
            for n, m in enumerate(merges):
                label = "Merge into" if n == 0 else f"Merge into, alternative {n}"
                actions.append(types.CodeAction(
                    title=f'{label}: "{preview(m.text)}" (with {where})', kind=types.CodeActionKind.QuickFix,
                    diagnostics=[pub.diagnostics[i + offset]],
                    edit=merge_edit(server, [(uri, story), (other_uri, other)],
                                    {other_uri: core.core_version.get(other.file), uri: pub.version}, m.text)))
    return actions


def keeping_merge(server: "ServerContext", title: str, texts: list[str], stories: list) -> str | None:
    """The first proposed merge that keeps every need of ``stories`` (every means, every distinct
    ends, every role); None, with a message naming what would be lost, when none does."""
    from storytransformer.similarity.needs import keeps_every_need

    first_reason = ""
    for text in texts:
        check = keeps_every_need(text, stories)
        if check.kept:
            return text
        first_reason = first_reason or check.reason
        log.info("merge proposal refused (%s): %r", check.reason, text)
    server.show(f"'{title}' refused: the proposed merge drops what a story asked for: {first_reason}",
                types.MessageType.Warning)
    return None


def merge_edit(server: "ServerContext", found_in: list[tuple[str, object]], versions: dict[str, int | None],
               text: str) -> types.WorkspaceEdit:
    """Replace the first story with the merged ``text`` and delete the others (whole lines).

    ``found_in`` pairs each story with the URI of the document it was read from: every edit goes to
    its own story's document, with that document's version (the client refuses it if it changed).
    """
    (keep_uri, keep), others = found_in[0], found_in[1:]
    per_uri: dict[str, list[types.TextEdit]] = {keep_uri: [types.TextEdit(range=lsp_range(keep.range), new_text=text)]}
    for u, o in others:
        per_uri.setdefault(u, []).append(types.TextEdit(range=whole_lines(o.range), new_text=""))
    changes = [types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=u, version=versions.get(u)), edits=edits)
        for u, edits in per_uri.items()]
    return types.WorkspaceEdit(document_changes=changes)


def register(server: "ServerContext") -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=KINDS, resolve_provider=True))
    async def code_action(params: types.CodeActionParams):
        uri = params.text_document.uri
        path = uri_to_path(uri)
        if path is None or path not in server.core.overlays:
            return None
        only = params.context.only
        actions: list[types.CodeAction] = []
        if wanted(FIX_ALL, only, explicit=True):
            fix_all = fix_all_action(server, uri)  # never waits: only what is ready now
            if fix_all is not None:
                actions.append(fix_all)
        if wanted(types.CodeActionKind.QuickFix, only) or wanted(types.CodeActionKind.RefactorRewrite, only):
            pub = await server.diagnostics.ensure_current(path)
            if pub is not None:
                stories = await server.core.run(server.core.stories_by_id, path)
                actions.extend(quick_fixes(server, uri, pub, params.range, only, stories))
                if wanted(types.CodeActionKind.QuickFix, only):
                    actions.extend(await merge_previews(server, uri, pub, params.range, stories))
        return actions or None

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(action: types.CodeAction) -> types.CodeAction:
        return await resolve_model_action(server, action)

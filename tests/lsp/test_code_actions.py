"""Quick fixes, fix-all on save, model actions resolved lazily (and refused clearly without a model)."""

from __future__ import annotations

from lsprotocol import types

from .conftest import STORIES, apply_edits, change, codes, open_doc, published_for, scanned, start, until, uri

FIX_ALL = "source.fixAll.storytransformer"


async def fix_all_when_ready(client, u: str, timeout: float = 45.0) -> list[types.CodeAction]:
    """Fix-all never waits: while the scan runs, the document's first look is provisional and it answers
    nothing. Ask again until the full check of the current version is there (as a later save would)."""
    import asyncio
    import time

    end = time.monotonic() + timeout
    while True:
        actions = await client.text_document_code_action_async(params(u, 0, only=["source.fixAll"]))
        if actions or time.monotonic() > end:
            return actions or []
        await asyncio.sleep(0.1)


def params(u: str, line: int, only=None, diagnostics=()) -> types.CodeActionParams:
    return types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=u),
        range=types.Range(types.Position(line, 0), types.Position(line, 0)),
        context=types.CodeActionContext(diagnostics=list(diagnostics), only=only))


async def test_quick_fix_moves_the_bracketed_note_out_of_the_story(client, workspace):
    await start(client, workspace)
    u = open_doc(client, workspace / "stories.txt")
    actions = await client.text_document_code_action_async(params(u, 2, only=[types.CodeActionKind.QuickFix]))
    fixes = [a for a in actions if a.edit is not None and any(d.code == "ST301" for d in a.diagnostics or [])]
    assert fixes, [a.title for a in actions]
    (doc_edit,) = fixes[0].edit.document_changes
    assert doc_edit.text_document.version == 1 and doc_edit.text_document.uri == u
    fixed = apply_edits(STORIES, doc_edit.edits).splitlines()
    assert "(see the old form)" not in fixed[2]
    assert fixed[2].startswith("As a librarian, I want to add new titles")
    assert any("see the old form" in line for line in fixed[3:-1])  # kept, as a note after the story
    assert fixed[:2] == STORIES.splitlines()[:2] and fixed[-1] == STORIES.splitlines()[3]
    # only quick fixes were asked for
    assert all(a.kind == types.CodeActionKind.QuickFix for a in actions)


async def test_context_only_filters_kinds(client, workspace):
    await start(client, workspace)
    u = open_doc(client, workspace / "stories.txt")
    rewrites = await client.text_document_code_action_async(params(u, 2, only=[types.CodeActionKind.RefactorRewrite]))
    assert rewrites and {a.kind for a in rewrites} == {types.CodeActionKind.RefactorRewrite}
    assert all(a.edit is None and a.data for a in rewrites)  # resolved lazily
    everything = await client.text_document_code_action_async(params(u, 2))
    assert not any(a.kind == FIX_ALL for a in everything)  # source actions only when asked for by name
    nothing = await client.text_document_code_action_async(params(u, 2, only=[types.CodeActionKind.RefactorExtract]))
    assert not nothing


async def test_fix_all_returns_the_fixes_computed_for_the_current_version(client, workspace):
    await start(client, workspace, options={"debounceMs": 0})
    u = open_doc(client, workspace / "stories.txt")
    await until(lambda: published_for(client, u, 1), what="diagnostics for version 1")
    (fix_all,) = await fix_all_when_ready(client, u)
    assert fix_all.kind == FIX_ALL
    (doc_edit,) = fix_all.edit.document_changes
    assert doc_edit.text_document.version == 1
    fixed = apply_edits(STORIES, doc_edit.edits)
    assert "(see the old form)" not in fixed and "# Note: see the old form" in fixed
    assert fixed.count("I want to search the catalogue") == 2  # duplicates are never deleted on save


async def test_fix_all_never_waits_for_a_pending_check(client, workspace):
    await start(client, workspace, options={"debounceMs": 5000})
    u = open_doc(client, workspace / "more.txt")
    await until(lambda: published_for(client, u, 1), what="diagnostics for version 1")
    change(client, u, 2, 0, 0, 0, " ")  # version 2 is not checked for 5 s
    actions = await client.text_document_code_action_async(params(u, 0, only=[FIX_ALL]))
    assert not actions  # nothing computed for version 2: no (stale) edit


async def test_merge_action_resolves_to_a_clear_reason_without_a_model(client, workspace):
    await start(client, workspace)
    u = open_doc(client, workspace / "stories.txt")
    actions = await client.text_document_code_action_async(params(u, 3, only=[types.CodeActionKind.QuickFix]))
    merge = next(a for a in actions if a.title.startswith("Merge with "))
    assert merge.edit is None and merge.data["story"]
    resolved = await client.code_action_resolve_async(merge)
    assert resolved.edit is None
    await until(lambda: any("model unavailable:" in m.message for m in client.messages), what="showMessage")
    # the deterministic quick fix (delete the exact duplicate) still works
    delete = next(a for a in actions if a.edit is not None and any(d.code == "ST601" for d in a.diagnostics))
    fixed = apply_edits(STORIES, delete.edit.document_changes[0].edits)
    assert fixed.count("I want to search the catalogue") == 1


async def test_model_actions_are_not_offered_when_turned_off(client, workspace):
    await start(client, workspace, options={"daemon": {"enabled": False}})
    u = open_doc(client, workspace / "stories.txt")
    actions = await client.text_document_code_action_async(params(u, 3))
    titles = [a.title for a in actions]
    assert titles and not any(t.startswith("Merge with") or t == "Rewrite with model" for t in titles)


async def test_a_quick_fix_carries_the_version_it_was_computed_for(client, workspace):
    await start(client, workspace, options={"debounceMs": 0})
    u = open_doc(client, workspace / "stories.txt")
    await until(lambda: published_for(client, u, 1), what="version 1")
    change(client, u, 2, 0, 0, 0, "")  # a no-op edit: version 2
    actions = await client.text_document_code_action_async(params(u, 2, only=[types.CodeActionKind.QuickFix]))
    versions = {dc.text_document.version for a in actions if a.edit for dc in a.edit.document_changes}
    assert versions == {2}  # never the stale version 1: the editor would refuse it anyway
    assert codes(published_for(client, u)[-1].diagnostics, 2)


async def test_a_model_action_for_an_old_version_is_not_resolved(client, workspace):
    await start(client, workspace, options={"debounceMs": 0})
    u = open_doc(client, workspace / "stories.txt")
    actions = await client.text_document_code_action_async(params(u, 3, only=[types.CodeActionKind.QuickFix]))
    merge = next(a for a in actions if a.title.startswith("Merge with "))
    change(client, u, 2, 3, 0, 0, "As a visitor, I want to renew a loan, so that I keep the book.\n")
    await until(lambda: published_for(client, u, 2), what="version 2 checked")
    resolved = await client.code_action_resolve_async(merge)
    assert resolved.edit is None
    await until(lambda: any("no longer there" in m.message for m in client.messages), what="a message")


async def test_fix_all_applies_the_kinds_named_by_fix_on_save_kinds(client, workspace):
    """fixOnSave.kinds is the core's fix policy on save: with "deletion" the later copy of a duplicate goes too."""
    dup = "As a visitor, I want to pay a fine online, so that I can borrow again.\n"
    text = "As a visitor, I want to see the opening hours (weekdays), so that I can plan my visit.\n" + dup + dup
    (workspace / "dup.txt").write_text(text, "utf-8")
    await start(client, workspace, options={"debounceMs": 0, "fixOnSave": {"kinds": ["safe", "deletion"]}})
    u = open_doc(client, workspace / "dup.txt")
    await until(lambda: published_for(client, u, 1), what="diagnostics for version 1")
    (fix_all,) = await fix_all_when_ready(client, u)
    fixed = apply_edits(text, fix_all.edit.document_changes[0].edits)
    assert fixed.count(dup) == 1 and fixed.endswith("# Note: weekdays\n" + dup)  # the later copy deleted
    assert "(weekdays)" not in fixed and "# Note: weekdays" in fixed  # and the safe fix applied with it


async def test_merge_action_and_duplicate_message_name_the_other_story_by_file_line(client, workspace):
    await start(client, workspace, options={"debounceMs": 0})
    u = open_doc(client, workspace / "stories.txt")
    await scanned(client)  # the folder's configuration (and so its root) is known after the scan

    def duplicate_message():
        pubs = published_for(client, u)
        return pubs and next((d.message for d in pubs[-1].diagnostics if d.code == "ST601" and d.range.start.line == 3),
                             None)

    message = await until(lambda: duplicate_message() == "Duplicate: the same story as stories.txt:1; delete one of them" or None,
                          what="the duplicate's message naming stories.txt:1, relative to the folder")
    assert message and str(workspace) not in duplicate_message()
    actions = await client.text_document_code_action_async(params(u, 3, only=[types.CodeActionKind.QuickFix]))
    assert "Merge with stories.txt:1" in [a.title for a in actions]


async def test_a_merge_is_previewed_in_the_title_and_applied_only_when_picked(client, workspace):
    """A near duplicate (ST602) gets 'Merge into: "<merged story>" (with <file:line>)': the merged text is
    in the title before anything is replaced, and the edit replaces this story and deletes the other."""
    text = ("As a visitor, I want to renew a loan online, so that I keep the book.\n"
            "As a visitor, I want to renew a loan online so that I keep the book!\n")
    (workspace / "near.txt").write_text(text, "utf-8")
    await start(client, workspace, options={"debounceMs": 0})
    u = open_doc(client, workspace / "near.txt")
    await until(lambda: published_for(client, u, 1), what="diagnostics for version 1")
    await scanned(client)
    actions = await client.text_document_code_action_async(params(u, 1, only=[types.CodeActionKind.QuickFix]))
    previews = [a for a in actions or [] if a.title.startswith("Merge into")]
    assert previews, [a.title for a in actions or []]
    merged = "As a visitor, I want to renew a loan online, so that I keep the book."
    assert previews[0].title == f'Merge into: "{merged}" (with near.txt:1)'
    assert len(previews) <= 4
    (doc_edit,) = previews[0].edit.document_changes
    assert doc_edit.text_document.version == 1
    assert apply_edits(text, doc_edit.edits) == merged + "\n"


def test_a_long_merge_preview_keeps_its_start_and_its_end():
    from storytransformer_server.lsp.code_actions import preview

    long = ("As a member, I want to renew a borrowed book online, so that I do not pay a late fee "
            "and I can keep reading it for longer and I can tell my friends about it.")
    shown = preview(long, 80)
    assert len(shown) <= 82 and " … " in shown
    assert shown.startswith("As a member, I want to renew") and shown.endswith("tell my friends about it.")
    assert preview("As a member, I want to renew a loan.") == "As a member, I want to renew a loan."


async def test_a_line_that_is_not_a_story_is_offered_its_skeleton_without_a_model(client, workspace):
    text = ("As a member, I want to renew a borrowed book online, so that I keep reading it.\n"
            "US-7: search should be fast and the renew button must be green\n"
            "As a member, I want to reserve a book, so that I can borrow it when it is back.\n")
    path = workspace / "wishes.txt"
    path.write_text(text)
    await start(client, workspace)
    u = open_doc(client, path)
    actions = await client.text_document_code_action_async(params(u, 1, only=[types.CodeActionKind.RefactorRewrite]))
    (skeleton,) = [a for a in actions or [] if a.title.startswith("Rewrite as a story")]
    assert '"As a <role>, I want to search fast, so that <benefit>." (+1 more)' in skeleton.title
    assert skeleton.edit is not None and not skeleton.is_preferred
    (doc_edit,) = skeleton.edit.document_changes
    assert doc_edit.text_document.version == 1
    lines = apply_edits(text, doc_edit.edits).splitlines()
    # one story per wish, each with its own id; the placeholders are left for the writer to fill in
    assert lines[1] == "US-7a: As a <role>, I want to search fast, so that <benefit>."
    assert lines[2] == "US-7b: As a <role>, I want the renew button to be green, so that <benefit>."
    assert lines[0] == text.splitlines()[0] and lines[3] == text.splitlines()[2]
    # a well-formed story gets no skeleton
    story_actions = await client.text_document_code_action_async(params(u, 0, only=[types.CodeActionKind.RefactorRewrite]))
    assert not any(a.title.startswith("Rewrite as a story") for a in story_actions or [])

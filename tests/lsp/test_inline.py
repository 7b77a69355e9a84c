"""Inline completion: the template while a story is typed, the fixed story on an existing one."""

from __future__ import annotations

from lsprotocol import types

from storytransformer_server.lsp.inline import apply_fixes, template_suggestions

from .conftest import STORIES, change, open_doc, published_for, start, until

ROLES = ["visitor", "librarian", "member", "library manager"]


def test_role_completion_ranks_workspace_roles_and_completes_the_template():
    out = template_suggestions("As a li", ROLES, "I want to")
    assert [s.text for s in out] == ["librarian, I want to ", "library manager, I want to ", "li, I want to "]
    assert all(s.start == len("As a ") for s in out)


def test_completion_after_role_means_and_before_ends():
    assert [s.text for s in template_suggestions("- As a visitor,", ROLES, "I'd like to")] == [" I'd like to "]
    assert [s.text for s in template_suggestions("As a visitor, ", ROLES, "I want to")] == ["I want to "]
    assert [s.text for s in template_suggestions("As a visitor, I want to renew my loan", ROLES, "I want to")] == [", so that "]
    # no suggestion once the ends is there, or mid-word of a one-word means, or outside a story
    assert template_suggestions("As a visitor, I want to renew my loan so that I", ROLES, "I want to") == []
    assert template_suggestions("As a visitor, I want to renew", ROLES, "I want to") == []
    assert template_suggestions("Notes for the meeting", ROLES, "I want to") == []
    assert template_suggestions("Has a visitor", ROLES, "I want to") == []
    assert template_suggestions("As a li", ROLES, "I want to", after="brarian, I want to ...") == []


async def test_inline_completion_over_lsp(client, workspace):
    result = await start(client, workspace, inline=True, options={"debounceMs": 0})
    assert result.capabilities.inline_completion_provider is not None
    u = open_doc(client, workspace / "stories.txt")
    await until(lambda: published_for(client, u, 1), what="diagnostics")
    change(client, u, 2, 4, 0, 0, "As a vis")
    got = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=u), position=types.Position(4, 8),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
    first = got.items[0]
    assert first.insert_text == "visitor, I want to "
    assert first.range.start == types.Position(4, 5) and first.range.end == types.Position(4, 8)


async def test_inline_completion_offers_the_fixed_story(client, workspace):
    await start(client, workspace, inline=True, options={"debounceMs": 0, "daemon": {"enabled": False}})
    u = open_doc(client, workspace / "stories.txt")
    got = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=u), position=types.Position(2, 10),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    (item,) = got.items
    assert item.insert_text == ("As a librarian, I want to add new titles, so that the catalogue stays current."
                                "\n# Note: see the old form")
    assert item.range.start == types.Position(2, 0) and item.range.end == types.Position(2, len(STORIES.splitlines()[2]))


def test_apply_fixes_ignores_edits_outside_the_story_line():
    from storytransformer.findings import Finding, Fix, Severity, TextEdit
    from storytransformer.story import Position, Range, Story

    line = "As a user, I want to log in [later], so that I stay safe."
    story = Story("s1", "f", line, Range(Position(0, 0, 0), Position(0, len(line), len(line))))
    inside = Finding("ST301", "minimal", Severity.WARNING, "m", "f", story.range, "s1",
                     fix=Fix("t", (TextEdit(Range(Position(0, 27, 27), Position(0, 35, 35)), ""),)))
    elsewhere = Finding("ST999", "minimal", Severity.WARNING, "m", "f", story.range, "s1",
                        fix=Fix("t", (TextEdit(Range(Position(1, 0, 0), Position(1, 0, 0)), "x"),)))
    assert apply_fixes(line, story, [inside, elsewhere]) == "As a user, I want to log in, so that I stay safe."
    assert apply_fixes(line, story, [elsewhere]) is None

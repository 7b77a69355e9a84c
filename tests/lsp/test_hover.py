"""Hover on a finding, against the real server over stdio."""

from __future__ import annotations

from lsprotocol import types

from storytransformer.rules import RULES
from storytransformer_server.lsp.hover import WHY

from .conftest import open_doc, start, until

STORIES = ("As a visitor, I want fast search of the catalogue, so that I can find a book.\n"
           "As a member, I want to renew a loan, so that I avoid a fine.\n")
OTHER = "As a member, I want to renew a loan, so that I avoid a fine.\n"


async def hover_at(client, u: str, line: int, character: int):
    return await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=u), position=types.Position(line, character)))


async def test_hover_explains_a_finding_and_shows_the_other_story_of_a_duplicate(client, tmp_path):
    (tmp_path / "backlog").mkdir()
    (tmp_path / "backlog" / "loans.txt").write_text("\n\n" + OTHER, "utf-8")
    path = tmp_path / "stories.txt"
    path.write_text(STORIES, "utf-8")
    await start(client, tmp_path)
    u = open_doc(client, path)
    await until(lambda: any(d.code == "ST601" for d in client.diagnostics.get(u, [])), what="the duplicate")

    vague = await hover_at(client, u, 0, STORIES.index("fast") + 1)
    assert vague.contents.kind == types.MarkupKind.Markdown
    text = vague.contents.value
    assert "**ST701 vague-term**" in text and "'fast'" in text  # what is wrong: the finding's message
    assert WHY["unambiguous"] in text  # why it matters
    assert "**How to fix:**" in text and "**Example:**" in text
    assert vague.range.start == types.Position(0, STORIES.index("fast"))

    dup = await hover_at(client, u, 1, 10)
    text = dup.contents.value
    assert "ST601" in text
    assert f"**Other story** (`backlog/loans.txt:3`): {OTHER.strip()}" in text

    assert await hover_at(client, u, 0, 3) is None or "ST701" not in (await hover_at(client, u, 0, 3)).contents.value


def test_every_rule_has_advice_and_its_criterion_a_reason():
    """The advice comes from each rule's declaration (its fix hint and a flagged and an unflagged example)."""
    assert all(r.fix and r.before and r.after for r in RULES.values())
    assert {r.criterion for r in RULES.values()} <= set(WHY)

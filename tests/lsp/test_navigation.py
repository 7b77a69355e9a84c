"""Outline, workspace symbols, go to definition and find references of story ids, against the real server
over stdio on real files."""

from __future__ import annotations

from lsprotocol import types

from storytransformer_server.lsp.navigation import id_at, story_name

from .conftest import change, open_doc, start, until, uri

LOANS = ("US-1: As a member, I want to renew a loan online, so that I avoid a late fee.\n"
         "# the loan stories\n"
         "US-2: As a member, I want to see my loans, as US-1 asks, so that I know when to renew.\n")
# Markdown ids come from the heading over a paragraph; the mention of US-2 in a story of another file is a reference.
CATALOGUE = ("# Catalogue\n\n"
             "## US-7: Search\n\n"
             "As a visitor, I want to search the catalogue by author, so that I find a book (after US-2).\n")


def pos(line: int, character: int) -> types.Position:
    return types.Position(line, character)


async def test_outline_symbols_definition_and_references(client, tmp_path):
    (tmp_path / "loans.stories.txt").write_text(LOANS, "utf-8")
    (tmp_path / "catalogue.md").write_text(CATALOGUE, "utf-8")
    await start(client, tmp_path)
    loans = open_doc(client, tmp_path / "loans.stories.txt")
    await until(lambda: loans in client.diagnostics, what="the first check")

    outline = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=types.TextDocumentIdentifier(uri=loans)))
    assert [s.name for s in outline] == ["US-1  renew a loan online", "US-2  see my loans, as US-1 asks"]
    assert [s.detail for s in outline] == ["member", "member"]
    assert [s.range.start.line for s in outline] == [0, 2]

    # an edit shows in the outline of the same version
    change(client, loans, 2, 1, 0, 18, "US-3: As a librarian, I want to add a title, so that members can borrow it.")
    outline = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=types.TextDocumentIdentifier(uri=loans)))
    assert [s.name.split()[0] for s in outline] == ["US-1", "US-3", "US-2"]

    found = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="us-7"))
    assert [(s.name, s.location.uri, s.location.range.start.line) for s in found] == [
        ("US-7  search the catalogue by author", uri(tmp_path / "catalogue.md"), 4)]
    found = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="loan renew"))
    assert [s.name.split()[0] for s in found] == ["US-1", "US-2"]  # both have both words; file order
    assert await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="no such words")) == []

    # go to definition from a mention in another file, and from the mention in the same file
    cat = open_doc(client, tmp_path / "catalogue.md")
    at = CATALOGUE.splitlines()[4].index("US-2") + 2
    where = await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=cat), position=pos(4, at)))
    assert [(w.uri, w.range.start.line) for w in where] == [(loans, 2)]
    where = await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=loans), position=pos(2, LOANS.splitlines()[2].index("US-1"))))
    assert [(w.uri, w.range.start.line) for w in where] == [(loans, 0)]
    assert await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=loans), position=pos(0, 20))) is None  # no id there

    refs = await client.text_document_references_async(types.ReferenceParams(
        text_document=types.TextDocumentIdentifier(uri=loans), position=pos(2, 1),
        context=types.ReferenceContext(include_declaration=True)))
    assert sorted((r.uri, r.range.start.line, r.range.start.character) for r in refs) == sorted(
        [(loans, 2, 0), (uri(tmp_path / "catalogue.md"), 4, at - 2)])
    refs = await client.text_document_references_async(types.ReferenceParams(
        text_document=types.TextDocumentIdentifier(uri=loans), position=pos(2, 1),
        context=types.ReferenceContext(include_declaration=False)))
    assert [(r.uri, r.range.start.line) for r in refs] == [(uri(tmp_path / "catalogue.md"), 4)]


def test_the_id_under_the_cursor_counts_utf16_columns_and_whole_tokens():
    line = "As a 🙂 user (see [US-12]), not XUS-3 nor US-4-5."
    at = line.index("US-12")
    utf16 = at + 1  # the emoji is two UTF-16 units
    assert id_at(line, utf16) == "US-12" and id_at(line, utf16 + 5) == "US-12"
    assert id_at(line, utf16 - 2) is None
    assert id_at(line, line.index("XUS-3") + 2) == "XUS-3"  # a token of its own
    assert id_at(line, line.index("US-4-5") + 1) is None  # not an id: a longer token


def test_an_outline_name_is_shortened_on_a_long_story():
    from storytransformer.formats import read_source
    from storytransformer.config import Config

    (story,) = read_source("b.stories.txt", "As a member, I want to " + "renew " * 40 + "a loan.\n", Config()).stories
    name = story_name(story)
    assert len(name) <= 80 and name.endswith("…") and name.startswith("renew renew")


async def test_rename_an_id_everywhere_it_is_written_and_refuse_a_bad_or_taken_one(client, tmp_path):
    import pytest
    from pygls.exceptions import JsonRpcException

    (tmp_path / "loans.stories.txt").write_text(LOANS, "utf-8")
    (tmp_path / "catalogue.md").write_text(CATALOGUE, "utf-8")
    await start(client, tmp_path)
    loans = open_doc(client, tmp_path / "loans.stories.txt", version=4)
    await until(lambda: loans in client.diagnostics, what="the first check")
    doc = types.TextDocumentIdentifier(uri=loans)

    prepared = await client.text_document_prepare_rename_async(types.PrepareRenameParams(
        text_document=doc, position=pos(2, 2)))
    assert prepared.placeholder == "US-2" and prepared.range == types.Range(pos(2, 0), pos(2, 4))
    assert await client.text_document_prepare_rename_async(types.PrepareRenameParams(
        text_document=doc, position=pos(0, 20))) is None  # no id under the cursor

    edit = await client.text_document_rename_async(types.RenameParams(
        text_document=doc, position=pos(2, 2), new_name="US-20"))
    changes = {c.text_document.uri: c for c in edit.document_changes}
    assert changes[loans].text_document.version == 4  # the open document: version-checked
    assert changes[uri(tmp_path / "catalogue.md")].text_document.version is None  # on disk only
    assert [(e.range.start.line, e.range.start.character, e.new_text) for e in changes[loans].edits] == [(2, 0, "US-20")]
    at = CATALOGUE.splitlines()[4].index("US-2")
    assert [(e.range.start.line, e.range.start.character, e.range.end.character)
            for e in changes[uri(tmp_path / "catalogue.md")].edits] == [(4, at, at + 4)]

    for bad, message in (("not an id", "is not a story id"), ("US-1", "already the id of the story at loans.stories.txt:1")):
        with pytest.raises(JsonRpcException, match=message):
            await client.text_document_rename_async(types.RenameParams(
                text_document=doc, position=pos(2, 2), new_name=bad))
    # the server goes on answering after refusing
    assert (await client.text_document_prepare_rename_async(types.PrepareRenameParams(
        text_document=doc, position=pos(0, 1)))).placeholder == "US-1"


async def test_odd_navigation_requests_get_an_answer_and_the_server_goes_on(client, tmp_path):
    import pytest
    from pygls.exceptions import JsonRpcException

    (tmp_path / "loans.stories.txt").write_text(LOANS, "utf-8")
    (tmp_path / "requirements.txt").write_text("pygls==2.0\n", "utf-8")
    await start(client, tmp_path)
    loans = open_doc(client, tmp_path / "loans.stories.txt")
    notes = open_doc(client, tmp_path / "requirements.txt")
    await until(lambda: loans in client.diagnostics, what="the first check")
    doc = types.TextDocumentIdentifier(uri=loans)
    far = pos(10**6, 10**6)
    assert await client.text_document_definition_async(types.DefinitionParams(text_document=doc, position=far)) is None
    assert not await client.text_document_references_async(types.ReferenceParams(
        text_document=doc, position=far, context=types.ReferenceContext(include_declaration=True)))
    assert await client.text_document_prepare_rename_async(types.PrepareRenameParams(
        text_document=doc, position=far)) is None
    # a file that is no story file: no outline, no tokens, no definition
    not_stories = types.TextDocumentIdentifier(uri=notes)
    assert await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=not_stories)) in ([], (), None)
    assert (await client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(
        text_document=not_stories))).data in ([], ())
    # a huge new name is refused with a short message; a huge query is answered
    with pytest.raises(JsonRpcException, match=r"^.{0,200}is not a story id"):
        await client.text_document_rename_async(types.RenameParams(
            text_document=doc, position=pos(0, 1), new_name="x" * 100_000))
    assert not await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="loan zebra " * 20_000))
    outline = await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc))
    assert [s.name.split()[0] for s in outline] == ["US-1", "US-2"]

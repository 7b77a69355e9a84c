"""Duplicates caught while they are typed, for real: the language server over stdio, a real daemon with
the packaged embedding model, a workspace on disk. Typing half of a restatement of an existing story
offers that story by file:line (completion and inline completion); an unrelated line offers nothing;
the line being typed is never offered as its own duplicate."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from storytransformer.story import Position, Range, Story
from storytransformer_server.lsp.typing_duplicates import continuation, looks_like_story

from .conftest import OwnDaemon, open_doc, replace_all, start, until, uri

DAEMON = OwnDaemon.create("st-lsp-typing-")

LIBRARY = """\
As a member, I want to renew a borrowed book online, so that I do not pay a late fee.
As a librarian, I want to print the monthly loan statistics, so that I can report to the board.
As a visitor, I want to search the catalogue by author, so that I find the books I like.
As an administrator, I want to reset a user's password, so that they can log in again.
"""
NEW = """\
As a librarian, I want to add new titles, so that the catalogue stays current.

"""
RESTATED = "As a library member, I would like to renew a borrowed book"  # half of a restatement of library.txt:1
UNRELATED = "As a pilot, I want to calibrate the altimeter before take-off"


# -- pure helpers (no server) ----------------------------------------------------------------
def _story(text: str, means: str) -> Story:
    from storytransformer.story import Part

    r = Range(Position(0, 0, 0), Position(0, len(text), len(text)))
    return Story(id="s", file="/ws/a.txt", text=text, range=r, means=Part("means", means, r, "I want to", r))


def test_the_ghost_text_continues_the_existing_story_after_the_last_typed_word():
    s = _story("As a member, I want to renew a borrowed book online, so that I do not pay a late fee.",
               "renew a borrowed book online")
    assert continuation("As a patron, I'd like to renew my borrowed", s) == " book online, so that I do not pay a late fee."
    assert continuation("As a patron, I'd like to renew my borrowed ", s) == "book online, so that I do not pay a late fee."
    assert continuation("As a patron, I'd like to renew my borr", s) == "owed book online, so that I do not pay a late fee."
    # the last word is not in the story's means, or only a function word: no insertion, the hint only
    assert continuation("As a patron, I'd like to extend my loan", s) is None
    assert continuation("As a patron, I'd like to extend the", s) is None


def test_markdown_documentation_only_for_a_client_that_renders_it():
    from storytransformer_server.lsp.typing_duplicates import Asked, client_renders_markdown, completion_items

    s = _story("As a member, I want to renew a book.", "renew a book")
    (md,) = completion_items([Asked(s, 0.81, "library.txt:1")], 3, 10, markdown=True)
    assert md.documentation.kind == types.MarkupKind.Markdown and "`library.txt:1`" in md.documentation.value
    assert md.label == "Already asked: library.txt:1" and md.detail.startswith("similarity 0.81 · As a member")
    caps = types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
        completion=types.CompletionClientCapabilities(completion_item=types.ClientCompletionItemOptions(
            documentation_format=[types.MarkupKind.Markdown]))))
    assert client_renders_markdown(caps) and not client_renders_markdown(types.ClientCapabilities())


def test_a_story_close_as_a_whole_is_already_asked_the_others_only_maybe():
    from storytransformer.similarity.typing_lookup import CONFIDENT
    from storytransformer_server.lsp.typing_duplicates import Asked, completion_items

    s = _story("As a member, I want to renew a book.", "renew a book")
    sure, unsure = completion_items([Asked(s, CONFIDENT, "library.txt:1"), Asked(s, CONFIDENT - 0.1, "other.txt:4")],
                                    3, 10, markdown=False)
    assert sure.label == "Already asked: library.txt:1" and sure.documentation.startswith("Already asked at library.txt:1")
    assert unsure.label == "Maybe asked: other.txt:4" and unsure.documentation.startswith("Maybe asked at other.txt:4")
    assert unsure.detail.startswith(f"similarity {CONFIDENT - 0.1:.2f} · ") and sure.preselect and not unsure.preselect


def test_only_a_line_with_a_means_under_way_is_looked_up():
    assert looks_like_story("As a patron, I would like to renew my")
    assert looks_like_story("As a patron, I'd like to renew my")  # every marker the reader knows
    assert looks_like_story("As a patron, I need to renew my")
    assert not looks_like_story("As a patron, I would like")
    assert not looks_like_story("Notes from the planning meeting")


# -- the real server and daemon --------------------------------------------------------------
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon():
    with DAEMON.running():
        yield DAEMON.runtime


@pytest_lsp.fixture(config=DAEMON.config)
async def typing_client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


def asked(result) -> list[types.CompletionItem]:
    items = result.items if isinstance(result, types.CompletionList) else (result or [])
    return [i for i in items if i.label.startswith(("Already asked: ", "Maybe asked: "))]


async def complete(client: LanguageClient, u: str, line: int, character: int) -> list[types.CompletionItem]:
    return asked(await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=u), position=types.Position(line, character))))


async def poll(ask, want=bool, tries: int = 600) -> list[types.CompletionItem]:
    """Ask until ``want(answer)`` (the daemon's index is built in the background); the last answer."""
    got: list[types.CompletionItem] = []
    for _ in range(tries):
        got = await ask()
        if want(got):
            break
        await asyncio.sleep(0.2)
    return got


async def type_line(client: LanguageClient, u: str, version: int, text: str, line: int = 1) -> str:
    lines = NEW.splitlines()
    lines[line] = text
    replace_all(client, u, version, "\n".join(lines) + "\n")
    return text


@pytest.fixture
def library(tmp_path):
    (tmp_path / "library.txt").write_text(LIBRARY, "utf-8")
    (tmp_path / "new.txt").write_text(NEW, "utf-8")
    return tmp_path


async def test_typing_half_a_restatement_offers_the_story_by_file_and_line(daemon, typing_client, library):
    await start(typing_client, library, options={"daemon": {"spawn": False}}, inline=True)
    u = open_doc(typing_client, library / "new.txt")
    version = 2
    await type_line(typing_client, u, version, RESTATED)
    # the daemon embeds the workspace in the background: the offer appears once its index is ready
    found = await poll(lambda: complete(typing_client, u, 1, len(RESTATED)))
    assert found, "no story was offered while typing a restatement of library.txt:1"
    first = found[0]
    assert first.label == "Already asked: library.txt:1"
    assert "renew a borrowed book online" in first.detail and "similarity 0." in first.detail
    # plain text: this client does not say it renders Markdown in completion documentation
    assert isinstance(first.documentation, str)
    assert "library.txt:1" in first.documentation and "inserts nothing" in first.documentation
    assert first.text_edit.new_text == "" and first.text_edit.range.start == types.Position(1, len(RESTATED))
    assert all(not i.label.endswith("new.txt:2") for i in found)

    inline = await typing_client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=u), position=types.Position(1, len(RESTATED)),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
    texts = [i.insert_text for i in inline.items] if inline else []
    assert " online, so that I do not pay a late fee." in texts, texts

    # a line unrelated to every story: nothing offered (the index is ready, as shown above)
    version += 1
    await type_line(typing_client, u, version, UNRELATED)
    assert await complete(typing_client, u, 1, len(UNRELATED)) == []


async def test_the_line_being_typed_is_never_its_own_duplicate(daemon, typing_client, library):
    """Once the daemon holds the typed line (unsaved text is shared with it), typing the same words in
    another file offers it there, but never on the line itself."""
    await start(typing_client, library, options={"daemon": {"spawn": False}})
    typed = "As a cyclist, I want to lock my bike to the rack, so that nobody steals it."
    u = open_doc(typing_client, library / "new.txt")
    replace_all(typing_client, u, 2, NEW.splitlines()[0] + "\n" + typed + "\n")
    other = library / "other.txt"
    other.write_text("", "utf-8")
    o = open_doc(typing_client, other, text="")
    replace_all(typing_client, o, 2, typed + "\n")

    offered_elsewhere = await poll(lambda: complete(typing_client, o, 0, len(typed)),
                                   lambda got: any(i.label == "Already asked: new.txt:2" for i in got))
    assert any(i.label == "Already asked: new.txt:2" for i in offered_elsewhere), \
        [i.label for i in offered_elsewhere]
    on_itself = await poll(lambda: complete(typing_client, u, 1, len(typed)),
                           lambda got: any(i.label == "Already asked: other.txt:1" for i in got), tries=150)
    assert all(not i.label.endswith(": new.txt:2") for i in on_itself), [i.label for i in on_itself]
    assert any(i.label == "Already asked: other.txt:1" for i in on_itself), [i.label for i in on_itself]
    assert uri(other) == o

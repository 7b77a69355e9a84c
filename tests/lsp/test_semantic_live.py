"""Semantic findings reach a client that pulls diagnostics, as VS Code does: the real server over stdio,
the real daemon with its embedding model, a paraphrase typed into a document.

The client behaves like vscode-languageclient: it pulls a document's diagnostics after each change
and again whenever the server sends ``workspace/diagnostic/refresh``; nothing else makes it pull.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import OwnDaemon, open_doc, scanned, start, until, uri

DAEMON = OwnDaemon.create("st-lsp-semantic-")
SEMANTIC = ("ST603", "ST604")

EXISTING = (
    "As a member, I want to renew a loan online, so that I avoid a fine.\n"
    "As a librarian, I want to print the monthly statistics, so that I can report to the board.\n"
)
OTHER = (
    "As a visitor, I want to search the catalogue for books, so that I can find something to read.\n"
    "As a member, I want to reserve a room in the library, so that my group can meet.\n"
)
PARAPHRASE = "As a visitor, I want to look up books in the catalogue, so that I can find something to read."

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon():
    with DAEMON.running():
        yield DAEMON.runtime


@pytest_lsp.fixture(config=DAEMON.config)
async def pulling(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def pull(client: LanguageClient, u: str) -> list[types.Diagnostic]:
    report = await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
        text_document=types.TextDocumentIdentifier(uri=u)))
    return list(getattr(report, "items", None) or [])


def overlaps(diagnostics: list[types.Diagnostic], line: int) -> list[types.Diagnostic]:
    return [d for d in diagnostics if d.code in SEMANTIC and d.range.start.line == line]


async def test_a_typed_paraphrase_gets_its_overlap_and_keeps_it_through_edits_and_a_save(daemon, pulling, tmp_path):
    client = pulling
    (tmp_path / "ours.txt").write_text(EXISTING, "utf-8")
    (tmp_path / "theirs.txt").write_text(OTHER, "utf-8")
    await start(client, tmp_path, options={"daemon": {"spawn": False, "timeoutS": 30}}, pull=True, refresh=True)
    await scanned(client)
    path = tmp_path / "ours.txt"
    u = open_doc(client, path)
    assert not overlaps(await pull(client, u), 2)

    # Type the paraphrase on a new line, a few words at a time, pulling after each change as VS Code does.
    text, version = EXISTING, 1
    words = PARAPHRASE.split(" ")
    for i in range(0, len(words), 4):
        typed = " ".join(words[i:i + 4]) + ("" if i + 4 >= len(words) else " ")
        line = text.count("\n")
        col = len(text) - (text.rfind("\n") + 1)
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=u, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(line, col), types.Position(line, col)), text=typed)]))
        text += typed
        last = await pull(client, u)
    assert text.splitlines()[2] == PARAPHRASE

    # The overlap appears without the client pulling on its own: the server asks it to pull again.
    async def shown() -> list[types.Diagnostic]:
        seen = client.diagnostic_refresh_count
        found = overlaps(last, 2)
        loop = asyncio.get_running_loop()
        end = loop.time() + 240  # a cold daemon loads its embedding model and embeds the workspace first
        while not found and loop.time() < end:
            await until(lambda: client.diagnostic_refresh_count > seen, timeout=max(1.0, end - loop.time()),
                        what="workspace/diagnostic/refresh after the daemon answered")
            seen = client.diagnostic_refresh_count
            found = overlaps(await pull(client, u), 2)
        return found

    found = await shown()
    assert found, "no overlap for the typed paraphrase"
    assert [r.location.uri for r in found[0].related_information] == [uri(tmp_path / "theirs.txt")]

    # A further edit elsewhere (a line inserted above it): the overlap is there in the very next pull,
    # moved with its story, before the daemon has answered for the new text.
    version += 1
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=u, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(0, 0), types.Position(0, 0)),
            text="As a member, I want to pay a fine online, so that my account is cleared.\n")]))
    text = "As a member, I want to pay a fine online, so that my account is cleared.\n" + text
    assert overlaps(await pull(client, u), 3), "the overlap vanished after an edit"

    # Saved: the same text on disk, and the overlap stays.
    path.write_text(text, "utf-8")
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=u)))
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=u, type=types.FileChangeType.Changed)]))
    assert overlaps(await pull(client, u), 3), "the overlap vanished after a save"
    # ... and once the daemon has answered for the saved text it is still there (no refresh takes it away).
    await asyncio.sleep(3)
    assert overlaps(await pull(client, u), 3), "the overlap vanished once the daemon answered for the new text"

"""The project's configuration files, watched and reloaded, and one configuration per workspace folder:
against the real server over stdio, with real files on disk."""

from __future__ import annotations

import os
import sys

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from .conftest import CONFIG, NO_SPAWN, capabilities, make_client, open_doc, published_for, scanned, until, uri

STORY = "As a visitor, I want fast search of the catalogue, so that I can find a book.\n"


def recording_client() -> LanguageClient:
    """The tests' client, also answering client/registerCapability and recording the registrations."""
    client = make_client()
    client.registrations = []  # type: ignore[attr-defined]

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        client.registrations.extend(params.registrations)  # type: ignore[attr-defined]

    return client


@pytest_lsp.fixture(config=ClientServerConfig(server_command=CONFIG.server_command, client_factory=recording_client,
                                              server_env=CONFIG.server_env))
async def watching(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def start(client: LanguageClient, folders: list) -> None:
    caps = capabilities()
    caps.workspace.did_change_watched_files = types.DidChangeWatchedFilesClientCapabilities(dynamic_registration=True)
    await client.initialize_session(types.InitializeParams(
        capabilities=caps, root_uri=uri(folders[0]), initialization_options=NO_SPAWN,
        workspace_folders=[types.WorkspaceFolder(uri=uri(f), name=f.name) for f in folders]))


def vague_count(client, u: str) -> int | None:
    pubs = published_for(client, u)
    return sum(d.code == "ST701" for d in pubs[-1].diagnostics) if pubs else None


def save(path, text: str) -> None:
    """Write the file the way editors save (a new file renamed over the old one): the server, reading
    it on an earlier notification, never sees it half-written."""
    tmp = path.with_name(path.name + ".saving")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


def watched(client, path) -> None:
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=uri(path), type=types.FileChangeType.Changed)]))


async def test_a_changed_config_file_is_reloaded_and_a_bad_value_keeps_the_previous_one(watching, tmp_path):
    client = watching
    (tmp_path / ".git").mkdir()
    config = tmp_path / "pyproject.toml"
    config.write_text("[project]\nname = \"x\"\n\n[tool.storytransformer]\nmax-words = 60\n", "utf-8")
    path = tmp_path / "stories.txt"
    path.write_text(STORY, "utf-8")
    await start(client, [tmp_path])
    u = open_doc(client, path)
    await until(lambda: vague_count(client, u) == 1, what="ST701 on 'fast'")
    await scanned(client)  # the scan reads the configuration: change it only after that
    assert vague_count(client, u) == 1
    # the server asked the client to watch the configuration files
    reg = await until(lambda: [r for r in client.registrations
                               if r.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES], what="registration")
    globs = sorted(w["globPattern"] for w in reg[0].register_options["watchers"])
    assert globs == ["**/.storytransformer.toml", "**/pyproject.toml"]

    # a new setting: the open document's diagnostics are published again without the finding
    before = len(published_for(client, u))
    save(config, config.read_text("utf-8") + 'severity = { ST701 = "off" }\n')
    watched(client, config)
    await until(lambda: len(published_for(client, u)) > before and vague_count(client, u) == 0,
                what="diagnostics without ST701")

    # a bad value: a message names the file and the setting; the previous configuration stays
    save(config, config.read_text("utf-8").replace("max-words = 60", "max-words = 0"))
    watched(client, config)
    msg = await until(lambda: [m for m in client.messages if "keeping the previous" in m.message], what="a message")
    assert str(config) in msg[0].message and "max_words" in msg[0].message.replace("-", "_")
    assert msg[0].type == types.MessageType.Error
    # still the previous configuration: an edit is checked with ST701 off
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=u, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=STORY.replace("fast", "easy"))]))
    await until(lambda: published_for(client, u, 2), what="version 2")
    assert vague_count(client, u) == 0


async def test_each_folder_uses_its_own_configuration(watching, tmp_path):
    client = watching
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / ".git").mkdir()
        (folder / "stories.txt").write_text(STORY, "utf-8")
    (b / ".storytransformer.toml").write_text('accepted-words = ["fast"]\n', "utf-8")
    await start(client, [a, b])
    ua, ub = open_doc(client, a / "stories.txt"), open_doc(client, b / "stories.txt")
    # the second folder accepts 'fast' (once the scan has read each folder's configuration)
    await until(lambda: vague_count(client, ub) == 0, what="no ST701 in the second folder")
    await until(lambda: client.progress_reports and all(
        any(isinstance(v, types.WorkDoneProgressEnd) for v in vs) for vs in client.progress_reports.values()),
        what="the end of the scan")
    assert vague_count(client, ua) == 1  # the first folder has no configuration: 'fast' is vague

"""A real language server subprocess per test, driven over stdio by pytest-lsp.

The server runs with its own empty runtime directory and the daemon's spawning
turned off, so no model process is started: model actions must then say why
they are unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features
from pytest_lsp.protocol import LanguageClientProtocol

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = tempfile.mkdtemp(prefix="st-lsp-test-")
SERVER_ENV = {**os.environ, "XDG_RUNTIME_DIR": RUNTIME, "HF_HUB_OFFLINE": "1",
              "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])}
NO_SPAWN = {"daemon": {"spawn": False, "timeoutS": 5}}

STORIES = """\
As a visitor, I want to search the catalogue, so that I can find a book.
I want to export the monthly report, so that I can share it with the board.
As a librarian, I want to add new titles (see the old form), so that the catalogue stays current.
As a visitor, I want to search the catalogue, so that I can find a book.
"""
MORE = """\
As a member, I want to renew a loan online, so that I avoid a fine.
As a librarian, I want to add new titles (see the old form), so that the catalogue stays current.
"""


def make_client() -> LanguageClient:
    """pytest-lsp's client, also recording every publishDiagnostics (with its version) and engine status."""
    client = LanguageClient(converter_factory=default_converter, protocol_cls=LanguageClientProtocol)
    client.published = []  # type: ignore[attr-defined]
    client.engine_status = []  # type: ignore[attr-defined]

    def publish(c: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
        c.diagnostics[params.uri] = params.diagnostics
        c.published.append(params)  # type: ignore[attr-defined]

    def engine_status(c: LanguageClient, params: Any) -> None:
        c.engine_status.append(params._asdict() if hasattr(params, "_asdict") else dict(params))  # type: ignore[attr-defined]

    features = dict(DEFAULT_CLIENT_FEATURES)
    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = publish
    features["storytransformer/engineStatus"] = engine_status
    register_lsp_features(client, features)
    return client


CONFIG = ClientServerConfig(server_command=[sys.executable, "-m", "storytransformer", "lsp"],
                            client_factory=make_client, server_env=SERVER_ENV)


@pytest_lsp.fixture(config=CONFIG)
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "stories.txt").write_text(STORIES, "utf-8")
    (tmp_path / "more.txt").write_text(MORE, "utf-8")
    return tmp_path


def uri(path: Path) -> str:
    return from_fs_path(str(path))


def capabilities(pull: bool = False, inline: bool = False, refresh: bool = False) -> types.ClientCapabilities:
    td = types.TextDocumentClientCapabilities(
        synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
        publish_diagnostics=types.PublishDiagnosticsClientCapabilities(related_information=True, version_support=True),
        code_action=types.CodeActionClientCapabilities(
            code_action_literal_support=types.ClientCodeActionLiteralOptions(
                code_action_kind=types.ClientCodeActionKindOptions(value_set=list(types.CodeActionKind))),
            resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
            data_support=True),
        diagnostic=types.DiagnosticClientCapabilities(related_document_support=True) if pull else None,
        inline_completion=types.InlineCompletionClientCapabilities() if inline else None,
    )
    ws = types.WorkspaceClientCapabilities(
        configuration=True, apply_edit=True,
        workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=True),
        did_change_configuration=types.DidChangeConfigurationClientCapabilities(dynamic_registration=False),
        diagnostics=types.DiagnosticWorkspaceClientCapabilities(refresh_support=refresh) if pull else None,
    )
    return types.ClientCapabilities(text_document=td, workspace=ws,
                                    window=types.WindowClientCapabilities(work_done_progress=True))


async def start(client: LanguageClient, root: Path, options: dict | None = None, **caps) -> types.InitializeResult:
    opts = {**NO_SPAWN, **(options or {})}
    return await client.initialize_session(types.InitializeParams(
        capabilities=capabilities(**caps), root_uri=uri(root),
        workspace_folders=[types.WorkspaceFolder(uri=uri(root), name=root.name)],
        initialization_options=opts))


async def until(cond: Callable[[], Any], timeout: float = 45.0, what: str = "condition") -> Any:
    """Wait for ``cond()`` to become truthy (the server is a real process: no fixed sleeps)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = cond()
        if value:
            return value
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def scanned(client: LanguageClient) -> None:
    """The initial workspace scan has ended (its progress notification says so)."""
    await until(lambda: any(isinstance(v, types.WorkDoneProgressEnd)
                            for vs in client.progress_reports.values() for v in vs), what="end of the scan")


def open_doc(client: LanguageClient, path: Path, text: str | None = None, version: int = 1) -> str:
    u = uri(path)
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=u, language_id="plaintext", version=version, text=path.read_text("utf-8") if text is None else text)))
    return u


def change(client: LanguageClient, u: str, version: int, line: int, start: int, end: int, text: str) -> None:
    """Replace columns ``start:end`` of one line."""
    change_range(client, u, version, (line, start), (line, end), text)


def change_range(client: LanguageClient, u: str, version: int, start: tuple[int, int], end: tuple[int, int],
                 text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=u, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(*start), types.Position(*end)), text=text)]))


def replace_all(client: LanguageClient, u: str, version: int, text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=u, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


def published_for(client: LanguageClient, u: str, version: int | None = ...) -> list[types.PublishDiagnosticsParams]:
    return [p for p in client.published if p.uri == u and (version is ... or p.version == version)]


def codes(diags, line: int | None = None) -> list[str]:
    return sorted(str(d.code) for d in diags if line is None or d.range.start.line == line)


def apply_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP edits (ASCII text, so UTF-16 columns are code points) the way an editor does."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))

    def off(p: types.Position) -> int:
        return offsets[min(p.line, len(lines))] + p.character

    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:off(e.range.start)] + e.new_text + text[off(e.range.end):]
    return text


@contextlib.contextmanager
def running_daemon(env: dict, runtime: str):
    """A real daemon started in ``runtime`` with ``env`` for the tests of one module; stopped after them."""
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "storytransformer", "daemon", "start", "--wait", "60"],
                       env=env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.fail(f"the daemon did not start: {r.stderr[-2000:]}")
    try:
        yield runtime
    finally:
        subprocess.run([sys.executable, "-m", "storytransformer", "daemon", "stop"], env=env, capture_output=True,
                       timeout=60)


@dataclasses.dataclass(frozen=True)
class OwnDaemon:
    """A module's own daemon: the server environment with its runtime, state and cache folders, and the
    client configuration that starts the real server in it. ``running()`` starts the daemon for the
    module's tests (a module-scoped fixture) and stops it after them."""

    runtime: str
    env: dict
    config: ClientServerConfig

    @classmethod
    def create(cls, prefix: str) -> "OwnDaemon":
        state = tempfile.mkdtemp(prefix=prefix)
        runtime = os.path.join(state, "run")
        env = {**SERVER_ENV, "STORYTRANSFORMER_RUNTIME_DIR": runtime, "XDG_STATE_HOME": state,
               "STORYTRANSFORMER_CACHE_DIR": os.path.join(state, "cache")}
        return cls(runtime, env, ClientServerConfig(server_command=[sys.executable, "-m", "storytransformer", "lsp"],
                                                    client_factory=make_client, server_env=env))

    def running(self):
        return running_daemon(self.env, self.runtime)

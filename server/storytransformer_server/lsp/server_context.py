"""What the language server's features share: the editing state, the options, the model adapter and a
few helpers (show a message, report progress, find an open document, ask the model).

Features (diagnostics, code actions, commands, ...) receive this context and never import
:mod:`.server`, which only creates the context and wires the features to it; so no feature depends on
every other one through the server. The context is the pygls ``LanguageServer`` itself, as in
jedi-language-server: handlers register on it and send requests through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from storytransformer import __version__

from .convert import path_to_uri, uri_to_path
from .documents import CoreState
from .model_adapter import EngineStatus, ModelAdapter
from .options import ServerOptions
from .protocol import StoryProtocol

if TYPE_CHECKING:  # the features the wiring attaches (server.create_server)
    from .config_reload import ConfigReload
    from .diagnostics import Diagnostics
    from .semantic import Semantic

log = logging.getLogger(__name__)
ENGINE_STATUS = "storytransformer/engineStatus"


class ServerContext(LanguageServer):
    """The state and helpers every feature may use; the features themselves are attached by the wiring."""

    diagnostics: "Diagnostics"
    semantic: "Semantic"
    config_reload: "ConfigReload"

    def __init__(self) -> None:
        super().__init__("storytransformer", __version__, protocol_cls=StoryProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.core = CoreState()
        self.options = ServerOptions()
        self.init_settings: Any = None
        self.shutdown_requested = False  # the client sent shutdown (an exit after it ends with code 0)
        self.exit_requested = False  # the client sent exit (without shutdown first: code 1)
        self.model = ModelAdapter(on_status=self.send_engine_status, on_index_changed=self._index_changed)
        # (path, version, story id) -> model rewrite, kept for fix-all on save
        self.model_rewrites: dict[tuple[str, int | None, str], str] = {}

    def _index_changed(self, params: Any) -> None:
        """The daemon saw files change on disk (a checkout, another tool): re-read those not open here."""
        paths = params.get("paths") if isinstance(params, dict) else None
        if isinstance(paths, list) and paths:
            asyncio.get_running_loop().create_task(self.diagnostics.reload([p for p in paths if isinstance(p, str)]))
        self.semantic.refresh_open()

    # -- helpers for the features -----------------------------------------
    def open_document(self, uri: str) -> TextDocument | None:
        return self.workspace.text_documents.get(unquote(uri))

    def open_document_for_path(self, path: str) -> TextDocument | None:
        return self.open_document(path_to_uri(path))

    async def current_path(self, uri: str) -> str | None:
        """The path of ``uri`` once the core holds an open document's current text (None: not a file)."""
        path = uri_to_path(uri)
        if path is not None and path in self.core.overlays:
            await self.diagnostics.ensure_current(path)
        return path

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, "%s", message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"StoryTransformer: {message}"))

    def send_engine_status(self, status: EngineStatus) -> None:
        try:
            self.protocol.notify(ENGINE_STATUS, status.to_json())
        except Exception:
            log.debug("cannot send engine status", exc_info=True)

    async def propose(self, method: str, params: dict, paths: list[str]) -> list[str]:
        """A model proposal about stories in ``paths``; the daemon first gets our roots and unsaved texts."""
        docs = []
        for path in dict.fromkeys(paths):
            doc = self.open_document_for_path(path)
            if doc is not None:
                docs.append((path, doc.version or 0, doc.source))
        async with self.progress("StoryTransformer", f"waiting for the model ({method})") as report:
            return await self.model.propose(method, params, roots=self.core.roots, documents=docs, report=report)

    @contextlib.asynccontextmanager
    async def progress(self, title: str, message: str = ""):
        """``$/progress`` around a piece of work, when the client shows progress; a no-op otherwise.
        Yields ``report(message, percentage)``."""
        token = None
        if self.supports_progress():
            token = str(uuid.uuid4())
            try:
                await self.work_done_progress.create_async(token)
                self.work_done_progress.begin(token, types.WorkDoneProgressBegin(
                    title=title, message=message or None, cancellable=False, percentage=0))
            except Exception:
                token = None

        def report(text: str, percentage: int | None = None) -> None:
            if token:
                self.work_done_progress.report(token, types.WorkDoneProgressReport(
                    message=text, percentage=percentage))

        try:
            yield report
        finally:
            if token:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))

    def supports_progress(self) -> bool:
        w = self.client_capabilities.window
        return bool(w and w.work_done_progress)

    def report_server_error(self, error: Exception, source) -> None:
        # Logged, and shown once as a message; never fatal.
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)
        super().report_server_error(error, source)

    def roots(self) -> list[str]:
        folders = [uri_to_path(f.uri) for f in self.workspace.folders.values()]
        roots = [f for f in folders if f]
        if not roots and self.workspace.root_uri:
            root = uri_to_path(self.workspace.root_uri)
            roots = [root] if root else []
        return roots

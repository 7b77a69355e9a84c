"""The language server: state shared by the features, and the wiring. No feature logic here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import uuid
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from . import code_actions, commands, completion, config_reload, configuration, diagnostics, hover, ignore, inline, semantic, stdio
from .convert import path_to_uri, uri_to_path
from .documents import CoreState
from .model import EngineStatus, ModelAdapter
from .options import ServerOptions
from .protocol import StoryProtocol

log = logging.getLogger(__name__)
ENGINE_STATUS = "storytransformer/engineStatus"
SCAN_BATCH = 10  # files checked per worker job during the workspace scan


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("storytransformer")
    except PackageNotFoundError:
        return "0"


class StoryServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("storytransformer", _version(), protocol_cls=StoryProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.core = CoreState()
        self.options = ServerOptions()
        self.init_settings: Any = None
        self.model = ModelAdapter(on_status=self.send_engine_status, on_index_changed=self._index_changed)
        self.diagnostics = diagnostics.Diagnostics(self)
        self.semantic = semantic.Semantic(self)
        self.config_reload = config_reload.ConfigReload(self)
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

    async def scan_workspace(self, configs: dict | None = None) -> None:
        """Load every story file of the workspace, then check it in batches (open documents first), showing
        results as they come; an edit made meanwhile is checked between two batches, not after the scan.
        ``configs`` (root -> Config): configurations already read (a reload), instead of reading them."""
        d = self.diagnostics
        async with self.progress("StoryTransformer", "reading the workspace") as report:
            try:
                result = await self.core.run(self.core.scan, self.roots(), self.options.rules, False, configs)
            except Exception as e:
                log.exception("workspace scan failed")
                self.show(f"the workspace scan failed: {e}", types.MessageType.Error)
                d.scanned.set()
                return
            for error in result.config_errors:
                self.show(f"{error} (using the default configuration)", types.MessageType.Error)
            configuration.review_project_config(self)  # ignored config files; untrusted remote settings
            for problem in result.problems[:5]:
                log.warning("%s", problem)
            paths = sorted(result.paths, key=lambda p: p not in self.core.overlays)
            seen = set(paths) | {ff.path for ff in result.unreadable}
            for path in list(d.published):
                if path not in seen:
                    d.forget(path)
            d.accept(result.unreadable)
            for i in range(0, len(paths), SCAN_BATCH):
                try:
                    d.accept(await self.core.run(self.core.check_paths, paths[i:i + SCAN_BATCH], True))
                except Exception:
                    log.exception("checking %s failed", ", ".join(paths[i:i + SCAN_BATCH]))
                done = min(i + SCAN_BATCH, len(paths))
                report(f"checked {done} of {len(paths)} files", int(100 * done / max(len(paths), 1)))
            await self.core.run(self.core.save_caches)
        if d.pull:
            d.refresh_pull()
        log.info("workspace: %d stories in %d files", result.stories, len(paths))
        d.scanned.set()


def create_server() -> StoryServer:
    server = StoryServer()

    @server.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        server.init_settings = configuration.initial_settings(params.initialization_options)
        # In force at once (requests may come before the client answers workspace/configuration);
        # problems are reported once the client's own settings are in, by `initialized`.
        from storytransformer.rules import RULES

        server.options, _ = configuration.parse_options(server.init_settings, set(RULES))
        server.model.options = server.options.daemon

    @server.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        fetched = await configuration.fetch_client_settings(server)
        await configuration.apply_settings(server, configuration.merge_settings(server.init_settings, fetched))
        loop = asyncio.get_running_loop()
        server.watchers = loop.create_task(config_reload.register_watchers(server))  # never waits on the client
        await server.scan_workspace()
        server.send_engine_status(server.model.status)
        if server.semantic.wanted:
            # Semantic duplicates need the daemon's index: connect now (starting it when allowed).
            loop.create_task(server.semantic.start())
        if server.options.daemon.enabled:
            loop.create_task(server.model.refresh_status(spawn=False))

    @server.feature(types.SHUTDOWN)
    async def shutdown(params: Any = None) -> None:
        await server.model.close()

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def folders_changed(params: types.DidChangeWorkspaceFoldersParams) -> None:
        await server.scan_workspace()

    diagnostics.register(server)
    code_actions.register(server)
    inline.register(server)
    completion.register(server)
    hover.register(server)
    ignore.register(server)
    commands.register(server)
    configuration.register(server)
    return server


def serve(tcp: bool = False, host: str = "127.0.0.1", port: int = 2087) -> None:
    server = create_server()
    if tcp:
        server.start_tcp(host, port)
    else:
        # The protocol gets its own copy of stdout; fd 1 then points at stderr, so a stray print
        # (ours, a library's, a C extension's) can never corrupt the LSP stream.
        protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        sys.stdout = sys.stderr
        # Our reader, not pygls': it survives bad framing (huge or wrong lengths, lower-case or LF-only headers).
        stdio.serve_io(server, stdin=sys.stdin.buffer, stdout=protocol_out)
    server.core.shutdown()

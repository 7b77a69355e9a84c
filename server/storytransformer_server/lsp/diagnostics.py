"""Diagnostics: checked on open, on change (debounced per document), for the whole workspace at start.

Pushed with ``textDocument/publishDiagnostics`` by default; when the client can
pull (``textDocument/diagnostic``), answered on request with result ids, and
``workspace/diagnostic`` covers every file of the workspace.

A result is kept and shown only if it belongs to the version the editor has
now: a result computed for an older version is dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lsprotocol import types

from storytransformer.findings import Finding

from . import config_reload, first_look, limits
from .convert import SOURCE, diagnostic, path_to_uri, uri_to_path
from .documents import FileFindings

if TYPE_CHECKING:
    from .server_context import ServerContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """What the editor was last given for one file."""

    uri: str
    version: int | None
    findings: FileFindings
    diagnostics: tuple[types.Diagnostic, ...]
    result_id: str
    provisional: bool = False  # the first look at a document opened during the scan (see first_look)


def to_diagnostics(ff: FileFindings) -> list[types.Diagnostic]:
    out = [diagnostic(f) for f in ff.findings]
    if ff.problem:
        pos = types.Position(ff.problem_line, 0)
        out.insert(0, types.Diagnostic(range=types.Range(pos, pos), message=ff.problem,
                                       severity=types.DiagnosticSeverity.Error, source=SOURCE))
    return out


class Diagnostics:
    """Debouncing, staleness checks and publication, for every file."""

    def __init__(self, server: "ServerContext"):
        self.server = server
        self.published: dict[str, Published] = {}  # path -> last result shown
        self.local: dict[str, FileFindings] = {}  # path -> last in-process result (without the daemon's)
        self._pending: dict[str, asyncio.Task] = {}  # path -> debounce task (sleeping)
        self._ids = itertools.count(1)
        self.scanned = asyncio.Event()
        self.scan_rules: dict[str, str] = {}  # the rule settings the last scan checked with
        self.dropped_stale = 0  # results computed for an old version, never shown
        self.notices: dict[str, tuple[int | None, str | None]] = {}  # path -> (version, what was not checked)
        self._first_looks: dict[str, asyncio.Task] = {}  # path -> first look in flight

    # -- mode --------------------------------------------------------------
    @property
    def pull(self) -> bool:
        caps = self.server.client_capabilities.text_document
        return caps is not None and caps.diagnostic is not None

    # -- scheduling --------------------------------------------------------
    def schedule(self, path: str, immediately: bool = False) -> None:
        """Check ``path`` after the debounce delay; a newer change restarts the delay."""
        old = self._pending.pop(path, None)
        if old is not None:
            old.cancel()
        delay = 0 if immediately else self.server.options.debounce_ms / 1000
        task = asyncio.get_running_loop().create_task(self._after(path, delay))
        self._pending[path] = task

    async def _after(self, path: str, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            return
        if self._pending.get(path) is asyncio.current_task():
            del self._pending[path]
        # From here on the check runs to the end even if a newer change comes in:
        # the core must see every text in order, and the staleness check drops the result.
        await asyncio.shield(self.check_open(path))

    # -- the first look at a document opened while the scan runs ------------
    def first_look(self, path: str, version: int, text: str) -> None:
        """Show the findings that need neither the scan nor the parser at once (the full check follows)."""
        if self.scanned.is_set():
            return
        opts = self.server.options
        if not limits.small(text, opts.max_stories, opts.max_bytes):
            return  # the full check bounds it and says so; no first look at a huge document
        self._first_looks[path] = asyncio.get_running_loop().create_task(self._first_look(path, version, text))

    async def _first_look(self, path: str, version: int, text: str) -> None:
        core, opts = self.server.core, self.server.options
        loop = asyncio.get_running_loop()
        try:
            # A thread of its own: the core's worker is busy with the scan, and the core is not touched.
            ff = await loop.run_in_executor(None, lambda: first_look.check_alone(
                path, version, text, first_look.folder_config(core, self.server.roots(), path, opts.rules)))
        except Exception:
            log.exception("first look at %s failed", path)
            return
        finally:
            if self._first_looks.get(path) is asyncio.current_task():
                del self._first_looks[path]
        old = self.published.get(path)
        if (old is not None and old.version == version) or not self._current(path, version):
            return  # the full result is in already, or the document changed
        pub = Published(path_to_uri(path), version, ff, tuple(to_diagnostics(ff)), str(next(self._ids)),
                        provisional=True)
        self.published[path] = pub
        if not self.pull:
            self._push(pub)

    async def _await_first_look(self, path: str) -> None:
        task = self._first_looks.get(path)
        if task is not None and not task.done():
            await asyncio.shield(task)

    def cancel(self, path: str) -> None:
        task = self._pending.pop(path, None)
        if task is not None:
            task.cancel()

    # -- checking ----------------------------------------------------------
    async def check_open(self, path: str) -> Published | None:
        """Check the open document at ``path`` as it is now; publish what is still current."""
        doc = self.server.open_document_for_path(path)
        if doc is None:
            return None
        version, text = doc.version or 0, doc.source
        core, opts = self.server.core, self.server.options
        try:
            if not limits.small(text, opts.max_stories, opts.max_bytes):
                # A large document: only its first stories are checked, and a notice says so.
                bounded = await core.run(limits.bound, path, text, core.config_for(path), opts.max_stories, opts.max_bytes)
                text = bounded.text
                self.notices[path] = (version, bounded.notice)
            else:
                self.notices.pop(path, None)
        except Exception:
            log.exception("measuring %s failed", path)
        core.overlays[path] = (version, text)
        try:
            own, affected = await core.run(core.update, path, version, text)
        except Exception:
            log.exception("checking %s failed", path)
            return None
        self.accept([own])
        self.server.semantic.schedule(path, version)
        if affected:
            # Duplicates in other files: shown after this file's own diagnostics, never before.
            asyncio.get_running_loop().create_task(self.check_others(affected))
        return self.published.get(path) if self._current(path, version) else None

    async def check_others(self, paths: list[str]) -> None:
        try:
            results = await self.server.core.run(self.server.core.check_paths, paths)
        except Exception:
            log.exception("checking %s failed", ", ".join(paths))
            return
        self.accept(results, others=True)

    async def ensure_current(self, path: str, first_look_ok: bool = False) -> Published | None:
        """The full result for the open document's current version, checking it now if needed.
        ``first_look_ok``: the first look at a document opened during the scan will do (a pull
        answers with it; code actions, fixes and hovers wait for the full check)."""
        for _ in range(3):
            doc = self.server.open_document_for_path(path)
            if doc is None:
                await self.scanned.wait()
                return self.published.get(path)
            if path not in self.server.core.overlays and not self.server.core.is_story_file(path, doc.source):
                return None  # an open file that is no story file (requirements.txt): nothing to report
            pub = self.published.get(path)
            if first_look_ok and (pub is None or pub.version != doc.version):
                await self._await_first_look(path)  # while the scan runs, the first look comes first
                pub = self.published.get(path)
            if pub is not None and pub.version == doc.version and (first_look_ok or not pub.provisional):
                return pub
            self.cancel(path)
            pub = await self.check_open(path)
            if pub is not None:
                return pub
        return None

    def current(self, path: str) -> Published | None:
        """The published result if it matches the document as it is now (never waits)."""
        pub = self.published.get(path)
        doc = self.server.open_document_for_path(path)
        if pub is None or pub.provisional or (doc is not None and pub.version != doc.version):
            return None
        return pub

    def _current(self, path: str, version: int | None) -> bool:
        doc = self.server.open_document_for_path(path)
        if doc is None:
            return version is None
        return doc.version == version

    def accept(self, results: list[FileFindings], others: bool = False) -> None:
        """Keep and show results that match what the editor has now; drop the rest."""
        changed_others = False
        for ff in results:
            if not self._current(ff.path, ff.version):
                # Computed for an old version (or a closed document): never shown.
                self.dropped_stale += 1
                log.debug("dropped stale diagnostics for %s version %s", ff.path, ff.version)
                continue
            self.local[ff.path] = ff
            extra = self.server.semantic.findings_for(ff.path, ff.version)
            if extra:
                ff = replace(ff, findings=tuple(sorted(ff.findings + extra, key=Finding.sort_key)))
            old = self.published.get(ff.path)
            diags = tuple(self._notice(ff) + to_diagnostics(ff))
            if old is not None and old.version == ff.version and old.diagnostics == diags:
                if old.provisional:  # the full check found what the first look showed: nothing new to send
                    self.published[ff.path] = replace(old, findings=ff, provisional=False)
                continue
            pub = Published(path_to_uri(ff.path), ff.version, ff, diags, str(next(self._ids)))
            self.published[ff.path] = pub
            if self.pull:
                # a client that pulled the first look of this version pulls again for the full result
                changed_others = changed_others or others or (old is not None and old.provisional)
            else:
                self._push(pub)
        if changed_others:
            self.refresh_pull()

    def _notice(self, ff: FileFindings) -> list[types.Diagnostic]:
        """The information diagnostic of a document checked only in part (see :mod:`.limits`)."""
        version, message = self.notices.get(ff.path, (None, None))
        if not message or version != ff.version:
            return []
        return [types.Diagnostic(range=types.Range(types.Position(0, 0), types.Position(0, 0)), message=message,
                                 severity=types.DiagnosticSeverity.Information, source=SOURCE,
                                 code=limits.NOTICE_CODE)]

    def republish(self, path: str) -> None:
        """Show the last in-process result again, with whatever the daemon added since. A client that
        pulls is asked to pull again: it pulled before the daemon answered and would keep that."""
        ff = self.local.get(path)
        if ff is not None:
            before = self.published.get(path)
            self.accept([ff])
            if self.pull and self.published.get(path) is not before:
                self.refresh_pull()

    def _push(self, pub: Published) -> None:
        self.server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=pub.uri, diagnostics=list(pub.diagnostics), version=pub.version))

    def forget(self, path: str) -> None:
        """The file is no longer linted: clear what the editor shows for it."""
        pub = self.published.pop(path, None)
        self.local.pop(path, None)
        self.notices.pop(path, None)
        if pub is not None and not self.pull:
            self.server.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=pub.uri, diagnostics=[]))

    def refresh_pull(self) -> None:
        ws = self.server.client_capabilities.workspace
        if ws is not None and ws.diagnostics is not None and ws.diagnostics.refresh_support:
            try:
                self.server.workspace_diagnostic_refresh(None)
            except Exception:
                log.debug("workspace/diagnostic/refresh failed", exc_info=True)

    async def reload(self, paths: list[str]) -> None:
        """Files changed on disk: re-read the ones not open in the editor and show their new findings."""
        for path in paths:
            path = os.path.normpath(os.path.abspath(path))
            if path in self.server.core.overlays or not self.server.core.is_story_file(path):
                continue
            own, affected = await self.server.core.run(self.server.core.revert, path)
            if self.server.core.has_file(path) or own.problem:
                self.accept([own])
            else:
                self.forget(path)
            if affected:
                await self.check_others(affected)

    def replace_all(self, results: list[FileFindings]) -> None:
        """After a scan or a configuration change: files that vanished are cleared, the rest shown."""
        seen = {ff.path for ff in results}
        for path in list(self.published):
            if path not in seen:
                self.forget(path)
        self.accept(results)
        if self.pull:
            self.refresh_pull()


def register(server: "ServerContext") -> None:
    d = server.diagnostics

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        path = uri_to_path(params.text_document.uri)
        if path is None or not server.core.is_story_file(path, params.text_document.text):
            return  # not a story file (requirements.txt, notes): no diagnostics
        server.core.overlays[path] = (params.text_document.version, params.text_document.text)
        d.schedule(path, immediately=True)
        d.first_look(path, params.text_document.version, params.text_document.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        path = uri_to_path(params.text_document.uri)
        if path is None:
            return
        if path not in server.core.overlays:
            # a text file that was no backlog when opened becomes one as stories are typed into it
            doc = server.open_document_for_path(path)
            if doc is None or not server.core.is_story_file(path, doc.source):
                return
            server.core.overlays[path] = (doc.version or 0, doc.source)
        d.schedule(path)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        # The saved text is what the editor already sent; nothing to re-read.
        return None

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(params: types.DidCloseTextDocumentParams) -> None:
        path = uri_to_path(params.text_document.uri)
        if path is None or server.core.overlays.pop(path, None) is None:
            return
        d.cancel(path)
        server.semantic.forget(path)
        await d.reload([path])

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched_files(params: types.DidChangeWatchedFilesParams) -> None:
        paths = [p for p in (uri_to_path(c.uri) for c in params.changes) if p]
        if any(config_reload.is_config_file(p) for p in paths):
            await server.config_reload.reload()
        await d.reload([p for p in paths if not config_reload.is_config_file(p)])

    @server.feature(types.TEXT_DOCUMENT_DIAGNOSTIC,
                    types.DiagnosticOptions(identifier=SOURCE, inter_file_dependencies=True,
                                            workspace_diagnostics=True))
    async def pull_document(params: types.DocumentDiagnosticParams):
        path = uri_to_path(params.text_document.uri)
        pub = await d.ensure_current(path, first_look_ok=True) if path else None
        if pub is None:
            return types.RelatedFullDocumentDiagnosticReport(items=[])
        if params.previous_result_id == pub.result_id:
            return types.RelatedUnchangedDocumentDiagnosticReport(result_id=pub.result_id)
        return types.RelatedFullDocumentDiagnosticReport(items=list(pub.diagnostics), result_id=pub.result_id)

    @server.feature(types.WORKSPACE_DIAGNOSTIC)
    async def pull_workspace(params: types.WorkspaceDiagnosticParams):
        await d.scanned.wait()
        previous = {p.uri: p.value for p in params.previous_result_ids or []}
        items = []
        for pub in list(d.published.values()):
            if previous.get(pub.uri) == pub.result_id:
                items.append(types.WorkspaceUnchangedDocumentDiagnosticReport(
                    uri=pub.uri, result_id=pub.result_id, version=pub.version))
            else:
                items.append(types.WorkspaceFullDocumentDiagnosticReport(
                    uri=pub.uri, items=list(pub.diagnostics), version=pub.version, result_id=pub.result_id))
        return types.WorkspaceDiagnosticReport(items=items)

"""Semantic duplicates and overlaps (ST603-ST605) from the daemon's similarity index.

The deterministic findings are computed here and shown at once; the daemon,
which holds the embedding model and the index of every story, adds the findings
only it can make. They are fetched after each check of an open document (with
its unsaved text), kept per document version, and shown together with the
deterministic ones; a reply for an older version is dropped. Without a daemon
nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from storytransformer.findings import Finding

from .model import ModelUnavailable

if TYPE_CHECKING:
    from .server_context import ServerContext

log = logging.getLogger(__name__)
TIMEOUT_S = 60.0  # the first request may wait for the daemon to embed the workspace


def local_codes() -> set[str]:
    """Codes the in-process rules produce; everything else in a daemon reply is the daemon's own."""
    from storytransformer.rules import RULES

    return {code for code, r in RULES.items() if r.check is not None}


def from_wire(items) -> tuple[Finding, ...]:
    from storytransformer_server.daemon.wire import finding_from_wire

    local = local_codes()
    out = []
    for d in items or ():
        if isinstance(d, dict) and d.get("code") not in local:
            try:
                out.append(finding_from_wire(d))
            except (KeyError, TypeError, ValueError) as e:
                log.warning("ignoring a malformed finding from the daemon (%s): %r", e, d)
    return tuple(out)


class Semantic:
    def __init__(self, server: "ServerContext"):
        self.server = server
        self.found: dict[str, tuple[int | None, tuple[Finding, ...]]] = {}  # path -> (version, findings)
        self._tasks: dict[str, tuple[int | None, asyncio.Task]] = {}  # path -> fetch in flight, for a version
        self._shared: dict[str, int | None] = {}  # path -> version of the text the daemon has from us

    @property
    def wanted(self) -> bool:
        o = self.server.options
        return o.daemon.enabled and o.semantic

    async def start(self) -> None:
        """Connect to the daemon (starting it when allowed) and give it our workspace roots."""
        if not self.wanted or not self.server.core.roots:
            return
        try:
            await self.server.model.share(self.server.core.roots, [])
        except ModelUnavailable as e:
            log.info("no semantic duplicates: %s", e)
            return
        for path in list(self.server.core.overlays):
            doc = self.server.open_document_for_path(path)
            if doc is not None:
                self.schedule(path, doc.version)

    def findings_for(self, path: str, version: int | None) -> tuple[Finding, ...]:
        v, found = self.found.get(path, (None, ()))
        return found if v == version else ()

    def schedule(self, path: str, version: int | None) -> None:
        if not self.wanted or not self.server.model.connected:
            return
        running = self._tasks.get(path)
        if running is not None:
            if running[0] == version and not running[1].done():
                return  # already asking for this version (index/changed notifications come in bursts)
            running[1].cancel()
        self._tasks[path] = (version, asyncio.get_running_loop().create_task(self._fetch(path, version)))

    def refresh_open(self) -> None:
        """The daemon's index changed (new embeddings): fetch again for every open document."""
        for path in list(self.server.core.overlays):
            doc = self.server.open_document_for_path(path)
            if doc is not None:
                self.schedule(path, doc.version)

    async def _fetch(self, path: str, version: int | None) -> None:
        doc = self.server.open_document_for_path(path)
        if doc is None or doc.version != version:
            return
        try:
            texts = [] if self._shared.get(path) == version else [(path, version or 0, doc.source)]
            await self.server.model.share(self.server.core.roots, texts)
            self._shared[path] = version
            reply = await self.server.model.request("findings", {"path": path, "semantic": True},
                                                    spawn=False, timeout=TIMEOUT_S)
        except ModelUnavailable as e:
            log.info("no semantic findings for %s: %s", path, e)
            return
        finally:
            running = self._tasks.get(path)
            if running is not None and running[1] is asyncio.current_task():
                del self._tasks[path]
        if not isinstance(reply, dict):
            return
        if reply.get("version") not in (None, version):
            return  # the daemon answered for another text
        found = from_wire(reply.get("findings"))
        doc = self.server.open_document_for_path(path)
        if doc is None or doc.version != version:
            return
        if self.findings_for(path, version) != found:
            self.found[path] = (version, found)
            self.server.diagnostics.republish(path)

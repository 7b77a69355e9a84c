"""Semantic duplicates and overlaps (ST603-ST605) from the daemon's similarity index.

The deterministic findings are computed here, once per edit, and shown at once;
the daemon, which holds the embedding model and the index of every story, sends
only the findings it alone can make (``findings`` with ``deterministic: false``).
They are fetched after each check of an open document (with its unsaved text,
shortly after typing stops) and shown together with the deterministic ones.

Getting them to every client reliably takes three things:

* a reply is kept with the text it was computed for, and carried to later versions
  of the document: a finding whose story is still there, word for word, stays on it
  (moved with it) until the daemon answers for the new text; an edit never makes
  semantic findings flicker away, and a reply that arrives after more typing is
  still shown on the stories it is about;
* when new semantic findings change what a document shows, a client that pulls
  diagnostics is asked to pull again (``workspace/diagnostic/refresh``): it would
  otherwise keep what it pulled before the daemon answered;
* a lost daemon connection is re-established on the next fetch, and the daemon's
  ``index/changed {reason: "semantic"}`` (the index was still building) fetches again.

Without a daemon nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from storytransformer.findings import Finding, shifted

from .model_adapter import ModelUnavailable

if TYPE_CHECKING:
    from .server_context import ServerContext

log = logging.getLogger(__name__)
TIMEOUT_S = 60.0  # the first request may wait for the daemon to embed the workspace
SETTLE_S = 0.25  # typing bursts: one request to the daemon once the text stops changing


def _local_codes() -> set[str]:
    from storytransformer.rules import RULES

    return {code for code, r in RULES.items() if r.check is not None}


def from_wire(items) -> tuple[Finding, ...]:
    """The daemon's semantic findings. A daemon started before ``deterministic: false`` existed still
    sends the rules' findings too: those are left out (they are shown from this process already)."""
    from storytransformer_server.daemon.wire import finding_from_wire

    out = []
    local = None
    for d in items or ():
        if isinstance(d, dict):
            if local is None:
                local = _local_codes()
            if d.get("code") in local:
                continue
            try:
                out.append(finding_from_wire(d))
            except (KeyError, TypeError, ValueError) as e:
                log.warning("ignoring a malformed finding from the daemon (%s): %r", e, d)
    return tuple(out)


@dataclass(frozen=True)
class Held:
    """The daemon's semantic findings of one document and the text they were computed for."""

    version: int | None
    text: str
    findings: tuple[Finding, ...]


def carry(held: Held, text: str) -> tuple[Finding, ...]:
    """``held``'s findings on ``text``: each one whose story's lines are still there word for word,
    moved to where they are now (the nearest copy); the others are left out until the daemon answers."""
    old, new = held.text.splitlines(), text.splitlines()
    where: dict[str, list[int]] = {}
    for i, line in enumerate(new):
        where.setdefault(line, []).append(i)
    out = []
    for f in held.findings:
        start, end = f.range.start.line, f.range.end.line
        if not 0 <= start <= end < len(old):
            continue
        block = old[start:end + 1]
        places = [i for i in where.get(block[0], ()) if new[i:i + len(block)] == block]
        if places:
            at = min(places, key=lambda i: abs(i - start))
            out.append(f if at == start else shifted(f, at - start))
    return tuple(out)


class Semantic:
    def __init__(self, server: "ServerContext"):
        self.server = server
        self.held: dict[str, Held] = {}  # path -> the latest reply of the daemon
        self._carried: dict[str, tuple[int | None, tuple[Finding, ...]]] = {}  # path -> (version, carried)
        self._tasks: dict[str, tuple[int | None, asyncio.Task]] = {}  # path -> fetch in flight, for a version
        self._again: set[str] = set()  # paths whose findings changed in the daemon while their fetch was in flight
        self._shared: dict[str, int | None] = {}  # path -> version of the text the daemon has from us
        self.started = False  # connected once: later fetches reconnect when the daemon went away

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
        self.started = True
        self.refresh_open()

    def findings_for(self, path: str, version: int | None) -> tuple[Finding, ...]:
        """The semantic findings to show with ``version`` of the document at ``path``."""
        held = self.held.get(path)
        if held is None:
            return ()
        if held.version == version:
            return held.findings
        cached = self._carried.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        doc = self.server.open_document_for_path(path)
        if doc is None or doc.version != version:
            return ()
        found = carry(held, doc.source)
        self._carried[path] = (version, found)
        return found

    def forget(self, path: str) -> None:
        """The document was closed: what the daemon said about its unsaved text no longer holds, and
        the daemon goes back to the file on disk (other editors' indexes must not keep unsaved text)."""
        self.held.pop(path, None)
        self._carried.pop(path, None)
        running = self._tasks.pop(path, None)
        if running is not None:
            running[1].cancel()
        if path in self._shared and self.server.model.connected:
            del self._shared[path]
            asyncio.get_running_loop().create_task(self._close(path))

    async def _close(self, path: str) -> None:
        try:
            await self.server.model.request("document/close", {"path": path}, spawn=False)
        except ModelUnavailable as e:
            log.info("could not close %s in the daemon: %s", path, e)

    def schedule(self, path: str, version: int | None) -> None:
        if not self.wanted or not (self.started or self.server.model.connected):
            return
        running = self._tasks.get(path)
        if running is not None:
            if running[0] == version and not running[1].done():
                # already asking for this version (index/changed notifications come in bursts); its answer may
                # predate this change (the model's findings after an edit), so one more fetch follows it
                self._again.add(path)
                return
            running[1].cancel()
        self._tasks[path] = (version, asyncio.get_running_loop().create_task(self._fetch(path, version)))

    def refresh_open(self) -> None:
        """The daemon's index changed (new embeddings): fetch again for every open document."""
        for path in list(self.server.core.overlays):
            doc = self.server.open_document_for_path(path)
            if doc is not None:
                self.schedule(path, doc.version)

    async def _fetch(self, path: str, version: int | None) -> None:
        try:
            await asyncio.sleep(SETTLE_S)
            doc = self.server.open_document_for_path(path)
            if doc is None or doc.version != version:
                return
            text = doc.source
            try:
                if not self.server.model.connected:
                    self._shared.clear()  # a new connection (a restarted daemon) has none of our texts
                texts = [] if self._shared.get(path) == version else [(path, version or 0, text)]
                await self.server.model.share(self.server.core.roots, texts)
                self._shared[path] = version
                reply = await self.server.model.request(
                    "findings", {"path": path, "semantic": True, "deterministic": False},
                    spawn=False, timeout=TIMEOUT_S)
            except ModelUnavailable as e:
                log.info("no semantic findings for %s: %s", path, e)
                return
        finally:
            running = self._tasks.get(path)
            if running is not None and running[1] is asyncio.current_task():
                del self._tasks[path]
                if path in self._again:
                    self._again.discard(path)
                    asyncio.get_running_loop().call_soon(self.schedule, path, version)
        if not isinstance(reply, dict):
            return
        if reply.get("version") not in (None, version):
            return  # the daemon answered for another text
        self.accept(path, Held(version, text, from_wire(reply.get("findings"))))

    def accept(self, path: str, held: Held) -> None:
        """Keep the daemon's answer (unless a newer one is kept already) and show what changed."""
        current = self.held.get(path)
        if current is not None and (current.version or 0) > (held.version or 0):
            return
        doc = self.server.open_document_for_path(path)
        if doc is None:
            return
        before = self.findings_for(path, doc.version)
        self.held[path] = held
        self._carried.pop(path, None)
        if self.findings_for(path, doc.version) != before:
            self.server.diagnostics.republish(path)

"""The language server's only door to the language model: a small adapter over the daemon client.

Everything model-related goes through :class:`ModelAdapter`, which turns every
way of failing (model features switched off, the daemon client not installed,
the daemon unreachable, a timeout, an error reply) into :class:`ModelUnavailable`
with a reason a user can act on, and a model that answered but proposed nothing
usable into :class:`NoProposal`, which says why. The deterministic features never depend on it.

A proposal first makes sure the model is loaded (``engine/load``, with its own long deadline and
progress every second), then asks for the proposal under the short request deadline: a first
load that takes half a minute is not a timed-out merge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from .options import DaemonOptions

log = logging.getLogger(__name__)

ENGINE_STATES = ("unavailable", "loading", "ready")
LOAD_TIMEOUT_S = 600.0  # a first load may convert a GGUF or read gigabytes; the daemon caps it too
TICK_S = 1.0  # how often a load in progress is reported

Report = Callable[[str, "int | None"], None]


class ModelUnavailable(Exception):
    """Model work cannot be done now; ``str(self)`` says why (``code``: the daemon's error code, if any)."""

    def __init__(self, reason: str = "", code: int | None = None):
        super().__init__(reason)
        self.code = code


class NoProposal(ModelUnavailable):
    """The model ran, but no proposal passed validation; ``str(self)`` says why in one sentence
    and :attr:`details` has each rejected proposal with its reasons (for the output channel)."""

    def __init__(self, reason: str, details: list[str] | None = None):
        super().__init__(reason)
        self.details = details or []


def failure_reason(error: ModelUnavailable) -> str:
    """What happened, whole: why no proposal passed, or why the model is unavailable."""
    return str(error) if isinstance(error, NoProposal) else f"model unavailable: {error}"


def failure_message(title: str, error: ModelUnavailable) -> str:
    """What a notification says when ``title`` (a command or action) failed."""
    return f"{title}: {failure_reason(error)}"


def log_failure(title: str, error: ModelUnavailable) -> None:
    """The full story in the output channel: the reason and every rejected proposal with its reasons."""
    log.warning("%s failed: %s", title, error)
    for line in getattr(error, "details", ()):
        log.warning("  %s", line)


@dataclass(frozen=True)
class EngineStatus:
    """What the ``storytransformer/engineStatus`` notification carries."""

    state: str = "unavailable"
    model: str | None = None
    device: str | None = None
    reason: str | None = "not connected to the daemon yet"
    elapsed_s: float | None = None  # while loading: seconds since the load began (the status bar shows it)

    def to_json(self) -> dict:
        out = {"state": self.state, "model": self.model, "device": self.device, "reason": self.reason}
        if self.elapsed_s is not None:
            out["elapsed"] = round(self.elapsed_s)
        return out

    @staticmethod
    def from_daemon(raw: Any) -> "EngineStatus":
        """Reads the daemon's ``engine/status`` reply or ``engine/state`` notification, whatever its spelling."""
        if not isinstance(raw, dict):
            return EngineStatus("unavailable", reason=f"unexpected engine status {raw!r}")
        state = str(raw.get("state") or raw.get("status") or "").lower()
        if state in ("ready", "loaded"):
            state = "ready"
        elif state in ("loading", "converting", "downloading"):
            state = "loading"
        else:
            state = "unavailable"
        reason = raw.get("reason") or raw.get("error") or raw.get("unavailable_reason")
        if state == "unavailable" and not reason:
            reason = "no model loaded (run Load Model)" if raw.get("available", True) else "the engine is not installed"
        model = raw.get("model") or raw.get("model_name")
        device = raw.get("device")
        return EngineStatus(state, str(model) if model else None, str(device) if device else None,
                            str(reason) if reason else None)


def proposal_texts(result: Any) -> list[str]:
    """The story texts in a daemon proposal reply (a string, ``{text}``, ``{proposals: [...]}``, ``{stories: [...]}``)."""
    if isinstance(result, str):
        return [result] if result.strip() else []
    if isinstance(result, list):
        out: list[str] = []
        for item in result:
            out.extend(proposal_texts(item))
        return out
    if isinstance(result, dict):
        if "proposal" in result:  # the daemon's reply: {kind, stories: [refs], proposal}
            return proposal_texts(result["proposal"])
        for key in ("proposals", "candidates"):
            if isinstance(result.get(key), list):
                return proposal_texts(result[key])
        for key in ("text", "story", "merged", "rewrite"):
            if isinstance(result.get(key), str) and result[key].strip():
                return [result[key]]
        stories = result.get("stories")
        if isinstance(stories, list) and stories:
            parts = [s if isinstance(s, str) else (s.get("text") if isinstance(s, dict) else None) for s in stories]
            parts = [p for p in parts if isinstance(p, str) and p.strip()]
            if parts:
                return ["\n".join(parts)]
    return []


class ModelAdapter:
    """Connects to the daemon lazily and forwards requests with a deadline."""

    def __init__(self, on_status: Callable[[EngineStatus], None],
                 on_index_changed: Callable[[Any], Any] | None = None):
        self.options = DaemonOptions()
        self.status = EngineStatus()
        self._on_status = on_status
        self._on_index_changed = on_index_changed
        self._client: Any = None
        self._lock = asyncio.Lock()
        self._registered: set[str] = set()  # workspace roots the daemon knows from this connection

    # -- connection -------------------------------------------------------
    @property
    def connected(self) -> bool:
        c = self._client
        return c is not None and not getattr(c, "closed", False)

    async def _connect(self, spawn: bool) -> Any:
        if not self.options.enabled:
            raise ModelUnavailable("model features are turned off (storytransformer.daemon.enabled is false)")
        if self.connected:
            return self._client
        async with self._lock:
            if self.connected:
                return self._client
            try:
                from storytransformer_server.daemon.client import DaemonClient
            except ImportError as e:
                raise ModelUnavailable(f"the daemon client is not installed ({e})") from None
            try:
                client = await asyncio.wait_for(DaemonClient.connect(spawn=spawn and self.options.spawn,
                                                                    start_flags=self.options.start_flags()),
                                                timeout=self.options.timeout_s)
            except asyncio.TimeoutError:
                raise ModelUnavailable(f"the daemon did not answer within {self.options.timeout_s:g} s") from None
            except Exception as e:  # any failure to connect is a reason, never a crash
                raise ModelUnavailable(f"cannot reach the daemon: {e or type(e).__name__}") from None
            self._subscribe(client)
            self._client = client
            self._registered.clear()
            return client

    def _subscribe(self, client: Any) -> None:
        client.on_notification("engine/state", lambda params: self._set_status(EngineStatus.from_daemon(params)))
        if self._on_index_changed is not None:
            client.on_notification("index/changed", self._on_index_changed)
        client.on_disconnect(self._lost)

    def _lost(self, reason: Any = None) -> None:
        self._client = None
        self._registered.clear()
        self._set_status(EngineStatus(reason=f"lost the daemon: {reason or 'connection closed'}"))

    async def close(self) -> None:
        client, self._client = self._client, None
        close = getattr(client, "close", None)
        if close:
            try:
                res = close()
                if asyncio.iscoroutine(res):
                    await res
            except Exception:
                log.debug("closing the daemon client failed", exc_info=True)

    def _set_status(self, status: EngineStatus) -> None:
        if status != self.status:
            self.status = status
            self._on_status(status)

    # -- requests ---------------------------------------------------------
    async def request(self, method: str, params: Any, spawn: bool = True, timeout: float | None = None) -> Any:
        client = await self._connect(spawn)
        deadline = timeout if timeout is not None else self.options.timeout_s
        try:
            return await client.request(method, params, timeout=deadline)
        except asyncio.CancelledError:
            raise
        except (asyncio.TimeoutError, TimeoutError):
            raise ModelUnavailable(f"{method} did not finish within {deadline:g} s") from None
        except (ConnectionError, EOFError, OSError) as e:
            await self.close()
            self._set_status(EngineStatus(reason=f"lost the daemon: {e or type(e).__name__}"))
            raise ModelUnavailable(f"lost the connection to the daemon: {e or type(e).__name__}") from None
        except Exception as e:  # DaemonError and anything else: the daemon's own message
            if getattr(client, "closed", False):
                self._client = None
            raise ModelUnavailable(getattr(e, "message", None) or str(e) or type(e).__name__,
                                   getattr(e, "code", None)) from None

    async def refresh_status(self, spawn: bool = False) -> EngineStatus:
        """Ask the daemon for the engine's state (without starting one unless ``spawn``)."""
        try:
            self._set_status(EngineStatus.from_daemon(await self.request("engine/status", {}, spawn=spawn, timeout=5.0)))
        except ModelUnavailable as e:
            self._set_status(EngineStatus(reason=str(e)))
        return self.status

    async def share(self, roots: list[str], documents: list[tuple[str, int, str]]) -> None:
        """Tell the daemon our workspace roots and the unsaved text of ``documents`` (path, version, text),
        so that the stories a proposal names are the ones the user sees."""
        for root in roots:
            if root not in self._registered:
                await self.request("workspace/register", {"root": root})
                self._registered.add(root)
        for path, version, text in documents:
            await self.request("document/overlay", {"path": path, "version": version, "text": text})

    async def propose(self, method: str, params: dict, roots: list[str] = (),
                      documents: list[tuple[str, int, str]] = (), report: Report | None = None,
                      root: str | None = None) -> list[str]:
        """Proposal texts for ``method``. The model is loaded first (not counted in the request's
        deadline, reported through ``report``); an answer without a proposal raises :class:`NoProposal`."""
        if roots or documents:
            await self.share(list(roots), list(documents))
        await self.ensure_loaded(root or root_of(params, list(roots)), report)
        if report:
            report(f"proposing ({method})", None)
        result = await self.request(method, params)
        texts = proposal_texts(result)
        if not texts:
            raise no_proposal(result)
        return texts

    async def ensure_loaded(self, root: str | None, report: Report | None = None) -> EngineStatus:
        """Load the model for ``root`` unless it is loaded, under :data:`LOAD_TIMEOUT_S`, telling the
        user every second how long it has been loading (``$/progress`` and the status bar)."""
        started = time.monotonic()
        load = asyncio.ensure_future(self._load_until_done(root, started))
        try:
            # an answer this fast: it was loaded already (ready: a round trip that confirms it; longer
            # only when another project's model replaces the resident one)
            quiet = 2.0 if self.status.state == "ready" else 0.3
            done, _ = await asyncio.wait({load}, timeout=quiet)
            while not done:
                elapsed = time.monotonic() - started
                if report:
                    report(f"loading the model ({elapsed:.0f} s)", None)
                self._set_status(EngineStatus("loading", self.status.model, self.status.device, None, elapsed))
                done, _ = await asyncio.wait({load}, timeout=TICK_S)
            reply = load.result()
        except BaseException:
            load.cancel()
            if self.status.state == "loading":
                await self.refresh_status()
            raise
        if isinstance(reply, dict) and reply.get("state"):
            self._set_status(EngineStatus.from_daemon(reply))
        return self.status

    async def _load_until_done(self, root: str | None, started: float) -> Any:
        """``engine/load`` until it answers or :data:`LOAD_TIMEOUT_S` has passed: a daemon whose own
        request deadline ends a slow first load keeps what it did (the converted weights), so asking
        again resumes it rather than starting over."""
        from storytransformer_server.daemon.protocol import DEADLINE_EXCEEDED

        limit = max(self.options.timeout_s, LOAD_TIMEOUT_S)
        while True:
            try:
                return await self.request("engine/load", {"root": root} if root else {},
                                          timeout=max(1.0, limit - (time.monotonic() - started)))
            except ModelUnavailable as e:
                if e.code != DEADLINE_EXCEEDED or time.monotonic() - started >= limit:
                    raise
                log.info("loading the model goes on after the daemon's request deadline: %s", e)

    async def load(self, root: str | None = None, engine: dict | None = None) -> EngineStatus:
        """Load the model for ``root``'s configuration, with the editor's ``engine`` settings on top."""
        self._set_status(EngineStatus("loading", self.status.model, self.status.device, None))
        params: dict = {}
        if root:
            params["root"] = root
        if engine:
            params["engine"] = engine
        try:
            if root:
                await self.share([root], [])
            reply = await self.request("engine/load", params, timeout=max(self.options.timeout_s, LOAD_TIMEOUT_S))
            if isinstance(reply, dict) and reply.get("state"):
                self._set_status(EngineStatus.from_daemon(reply))
            else:
                await self.refresh_status()
        except ModelUnavailable as e:
            self._set_status(EngineStatus(reason=str(e)))
        return self.status

    async def unload(self) -> EngineStatus:
        try:
            await self.request("engine/unload", {}, spawn=False)
            self._set_status(EngineStatus(reason="model unloaded"))
        except ModelUnavailable as e:
            self._set_status(EngineStatus(reason=str(e)))
        return self.status


def no_proposal(result: Any) -> NoProposal:
    """The daemon's reply without a usable proposal, as the reason it gives (``reason``) and one
    detail line per rejected proposal (``rejected``)."""
    reason = result.get("reason") if isinstance(result, dict) else None
    details = []
    for r in (result.get("rejected") or []) if isinstance(result, dict) else []:
        if isinstance(r, dict):
            details.append(f"{r.get('origin', 'a')} proposal {r.get('text', '')!r} rejected: "
                           f"{'; '.join(str(x) for x in r.get('reasons') or [])}")
    return NoProposal(str(reason) if reason else "the model made no proposal that passed validation", details)


def root_of(params: dict, roots: list[str]) -> str | None:
    """The workspace root holding the first story a proposal request names (its configuration
    picks the model), else the first root."""
    refs = params.get("stories") if isinstance(params.get("stories"), list) else [params]
    files = [r.get("file") for r in refs if isinstance(r, dict) and isinstance(r.get("file"), str)]
    for f in files[:1]:
        holding = [r for r in roots if f == r or f.startswith(r.rstrip("/\\") + ("\\" if "\\" in r else "/"))]
        if holding:
            return max(holding, key=len)
    return roots[0] if roots else None

"""The language server's only door to the language model: a small adapter over the daemon client.

Everything model-related goes through :class:`ModelAdapter`, which turns every
way of failing (model features switched off, the daemon client not installed,
the daemon unreachable, a timeout, an error reply) into :class:`ModelUnavailable`
with a reason a user can act on. The deterministic features never depend on it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

from .options import DaemonOptions

log = logging.getLogger(__name__)

ENGINE_STATES = ("unavailable", "loading", "ready")


class ModelUnavailable(Exception):
    """Model work cannot be done now; ``str(self)`` says why."""


@dataclass(frozen=True)
class EngineStatus:
    """What the ``storytransformer/engineStatus`` notification carries."""

    state: str = "unavailable"
    model: str | None = None
    device: str | None = None
    reason: str | None = "not connected to the daemon yet"

    def to_json(self) -> dict:
        return {"state": self.state, "model": self.model, "device": self.device, "reason": self.reason}

    @staticmethod
    def from_daemon(raw: Any) -> "EngineStatus":
        """Reads the daemon's ``engine/status`` reply or ``engine/state`` notification, whatever its spelling."""
        if not isinstance(raw, dict):
            return EngineStatus("unavailable", reason=f"unexpected engine status {raw!r}")
        state = str(raw.get("state") or raw.get("status") or "").lower()
        if state in ("ready", "loaded", "idle-loaded"):
            state = "ready"
        elif state in ("loading", "converting", "downloading"):
            state = "loading"
        else:
            state = "unavailable"
        reason = raw.get("reason") or raw.get("error")
        if state == "unavailable" and not reason:
            reason = "no model loaded"
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

    def __init__(self, on_status: Callable[[EngineStatus], None], on_index_changed: Callable[[Any], None] | None = None):
        self.options = DaemonOptions()
        self.status = EngineStatus()
        self._on_status = on_status
        self._on_index_changed = on_index_changed
        self._client: Any = None
        self._lock = asyncio.Lock()

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
                client = await asyncio.wait_for(DaemonClient.connect(spawn=spawn and self.options.spawn),
                                                timeout=self.options.timeout_s)
            except asyncio.TimeoutError:
                raise ModelUnavailable(f"the daemon did not answer within {self.options.timeout_s:g} s") from None
            except Exception as e:  # any failure to connect is a reason, never a crash
                raise ModelUnavailable(f"cannot reach the daemon: {e or type(e).__name__}") from None
            self._subscribe(client)
            self._client = client
            return client

    def _subscribe(self, client: Any) -> None:
        def on_notification(method: str, params: Any = None) -> None:
            if method == "engine/state":
                self._set_status(EngineStatus.from_daemon(params))
            elif method == "index/changed" and self._on_index_changed:
                self._on_index_changed(params)

        for name in ("on_notification", "add_notification_handler", "subscribe"):
            register = getattr(client, name, None)
            if callable(register):
                try:
                    register(on_notification)
                    return
                except TypeError:
                    try:
                        register("engine/state", lambda p: on_notification("engine/state", p))
                        register("index/changed", lambda p: on_notification("index/changed", p))
                        return
                    except Exception:
                        log.debug("cannot subscribe with %s", name, exc_info=True)
        log.info("daemon client offers no notification hook; engine state is polled on request")

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
        except Exception as e:
            raise ModelUnavailable(f"{method} failed: {e or type(e).__name__}") from None

    async def refresh_status(self, spawn: bool = False) -> EngineStatus:
        """Ask the daemon for the engine's state (without starting one unless ``spawn``)."""
        try:
            self._set_status(EngineStatus.from_daemon(await self.request("engine/status", {}, spawn=spawn, timeout=5.0)))
        except ModelUnavailable as e:
            self._set_status(EngineStatus(reason=str(e)))
        return self.status

    async def propose(self, method: str, params: dict) -> list[str]:
        texts = proposal_texts(await self.request(method, params))
        if not texts:
            raise ModelUnavailable("the model made no proposal that passed validation")
        return texts

    async def load(self) -> EngineStatus:
        self._set_status(EngineStatus("loading", self.status.model, self.status.device, None))
        try:
            reply = await self.request("engine/load", {}, timeout=max(self.options.timeout_s, 600.0))
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

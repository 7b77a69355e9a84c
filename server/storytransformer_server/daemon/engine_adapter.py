"""The daemon's only door to ``storytransformer.engine`` (the language model), through its typed API.

* torch and transformers are optional and heavy: a missing package, a model that
  will not load, a setting this machine cannot honour all become one clear
  ``ENGINE_UNAVAILABLE`` answer (:func:`translate`), never a traceback or a dead daemon.
* One worker thread runs every model call (load, proposals, unload) in
  order: one resident model, never two generations competing for memory.
* Cancellation and deadlines pass through as the engine's ``CancelToken``
  and ``Deadline``, which it checks between tokens.
* The idle clock: the server unloads the model after ``idle_unload_s``.
* The engine is keyed by its settings (:func:`engine_key`): a request whose project asks for
  another model or another remote server replaces the resident engine (on the engine
  thread, so no request runs on an engine configured for another project), and a project
  file's remote settings count only while the user trusts that file (``storytransformer.trust``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import storytransformer.engine as engine_package
from storytransformer.config import Config
from storytransformer.engine import (Cancelled, DeadlineExceeded, EngineConfigError, EngineError, EngineUnavailable,
                                     ModelLoadError, Unsupported, create_engine)
from storytransformer.engine.contract import CancelToken, Deadline, ProposalKind
from storytransformer.engine.proposer import Outcome, Proposer
from storytransformer.findings import Finding
from storytransformer.story import Story

from .protocol import CANCELLED, DEADLINE_EXCEEDED, ENGINE_ERROR, ENGINE_UNAVAILABLE, DaemonError

log = logging.getLogger(__name__)

EngineFactory = Callable[[Config], Proposer]


def effective_config(config):
    """``config`` with its remote settings as the user's trust list says now."""
    from storytransformer.trust import effective

    return effective(config)


def engine_key(config) -> str:
    """What makes two projects' engines the same: every engine setting, and the project root when
    the model is a relative path (it resolves against the root)."""
    engine = getattr(config, "engine", None)
    if engine is None:
        return ""
    settings = dataclasses.asdict(engine) if dataclasses.is_dataclass(engine) else dict(vars(engine))
    settings.pop("model_checks_on_edit", None)  # when the daemon asks, not which model answers
    model = settings.get("model") or ""
    root = str(getattr(config, "root", "")) if model and not os.path.isabs(model) else ""
    return json.dumps([settings, root], sort_keys=True, default=str)


def translate(e: BaseException) -> DaemonError:
    """Engine exceptions -> daemon error codes, keeping the engine's message (it is written for users)."""
    name = type(e).__name__
    if isinstance(e, DaemonError):
        return e
    if isinstance(e, Cancelled):
        return DaemonError(CANCELLED, str(e))
    if isinstance(e, DeadlineExceeded):
        return DaemonError(DEADLINE_EXCEEDED, str(e))
    if isinstance(e, (EngineUnavailable, ModelLoadError, EngineConfigError, Unsupported)):
        return DaemonError(ENGINE_UNAVAILABLE, str(e), {"kind": name})
    if isinstance(e, EngineError):
        return DaemonError(ENGINE_ERROR, str(e), {"kind": name})
    if isinstance(e, MemoryError):
        return DaemonError(ENGINE_UNAVAILABLE, "out of memory running the model", {"kind": name})
    if isinstance(e, ImportError):
        return DaemonError(ENGINE_UNAVAILABLE, f"the language-model engine cannot run here ({e}); "
                           "install the 'engine' extra (pip install 'storytransformer[engine]')", {"kind": name})
    return DaemonError(ENGINE_ERROR, f"the engine failed: {name}: {e}", {"kind": name})


class EngineAdapter:
    def __init__(self, on_state: Callable[[dict], None] | None = None, run_cpu=None,
                 create: EngineFactory = create_engine):
        self._create = create
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._on_state = on_state or (lambda state: None)
        self._run_cpu = run_cpu
        self._load_lock = asyncio.Lock()
        self.engine: Proposer | None = None  # created on first use (cheap); the model itself loads in load()
        self._key: str | None = None  # engine_key() of the settings self.engine was made from
        self._ready = False  # tracked here: asking the engine may probe the hardware (imports torch)
        self.last_used = time.monotonic()
        self.busy = 0
        self.queued = 0

    def module(self):
        """The engine package, for a request's ``CancelToken`` and ``Deadline`` (imported, never looked up)."""
        return engine_package

    @staticmethod
    def token() -> CancelToken:
        return CancelToken()

    @staticmethod
    def deadline(at: float | None) -> Deadline:
        return Deadline(at)

    def _select(self, config) -> Proposer:
        """The engine for ``config`` (engine thread only): the resident one if its settings match,
        else the resident one is unloaded and a new one made (one model in memory at a time)."""
        key = engine_key(config)
        if self.engine is not None and self._key != key:
            old, self.engine, self._key, self._ready = self.engine, None, None, False
            log.info("engine settings changed (another project's configuration): replacing the engine")
            try:
                old.unload()
            except Exception:  # noqa: BLE001 - the old engine is dropped either way
                log.exception("unloading the previous engine failed")
        if self.engine is None:
            try:
                self.engine = self._create(config)
            except Exception as e:  # noqa: BLE001
                raise translate(e) from None
            self._key = key
        return self.engine

    def _select_and_load(self, config, token, deadline) -> Proposer:
        engine = self._select(config)
        if not self._ready:
            engine.load(token=token, deadline=deadline)
            self._ready = True
            self.last_used = time.monotonic()
        return engine

    def matches(self, config) -> bool:
        return self.engine is not None and self._key == engine_key(effective_config(config))

    # -- state ------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.engine is not None and self._ready

    def status(self) -> dict:
        """The engine's own status (device, dtype, memory, ...) plus availability and queue depth."""
        out: dict = {"state": "unloaded", "available": True, "unavailable_reason": ""}
        if self.engine is not None:
            try:
                st = self.engine.status()
                out.update(st.to_dict() if hasattr(st, "to_dict") else dict(st))
            except Exception as e:  # noqa: BLE001
                out.update(state="failed", error=f"{type(e).__name__}: {e}")
        out.update(busy=self.busy, queued=self.queued, idle_s=round(self.idle_for(), 1))
        return out

    async def status_async(self) -> dict:
        """:meth:`status` off the event loop (the first call may probe the hardware, importing torch)."""
        if self._run_cpu is None:
            return self.status()
        return await self._run_cpu(self.status)

    async def _announce(self, state: str | None = None) -> None:
        """Send ``engine/state`` (status computed off the event loop; ``state`` overrides its state)."""
        try:
            st = await self.status_async()
            if state:
                st["state"] = state
            self._on_state(st)
        except Exception:  # noqa: BLE001 - notifying is best effort
            log.exception("engine state notification failed")

    def idle_for(self) -> float:
        return 0.0 if self.busy or self.queued else time.monotonic() - self.last_used

    # -- load / unload ----------------------------------------------------
    async def load(self, config, token=None, deadline=None) -> dict:
        config = effective_config(config)
        async with self._load_lock:
            loop = asyncio.get_running_loop()
            if self.loaded and self.matches(config):
                return await self.status_async()
            await self._announce("loading")
            try:
                await loop.run_in_executor(self._executor, self._select_and_load, config, token, deadline)
            except DaemonError:
                await self._announce()
                raise
            except Exception as e:  # noqa: BLE001 - out of memory, missing weights, bad settings: report, keep running
                log.warning("engine failed to load: %s", e)
                await self._announce()
                raise translate(e) from None
            await self._announce()
            status = await self.status_async()
            log.info("engine ready: %s on %s", status.get("model"), status.get("device"))
            return status

    async def unload(self, reason: str = "requested") -> dict:
        async with self._load_lock:
            if not self.loaded:
                return await self.status_async()
            engine = self.engine
            await asyncio.get_running_loop().run_in_executor(self._executor, engine.unload)
            self._ready = False
            log.info("engine unloaded (%s)", reason)
            await self._announce()
            return await self.status_async()

    # -- calls ------------------------------------------------------------
    async def propose(self, kind: ProposalKind, stories: Sequence[Story], findings: Sequence[Finding] = (), *,
                      config, token: CancelToken | None = None, deadline: Deadline | None = None) -> Outcome:
        """Proposals of ``kind`` on the engine thread, loading the model first: what passed
        validation, what did not, and why none did (see :meth:`call`)."""
        return await self.call(lambda engine: engine.propose(kind, stories, findings, token=token, deadline=deadline),
                               config=config, token=token, deadline=deadline)

    async def call(self, work_on: Callable, *, config, token: CancelToken | None = None,
                   deadline: Deadline | None = None):
        """``work_on(engine)`` on the engine thread, the model loaded first; engine errors become daemon errors.

        A load this needs is announced (``engine/state``); an editor that must not count a first
        load against a short request deadline sends ``engine/load`` first. The engine is chosen
        again on the engine thread right before the call: another project's request may have
        replaced it since this one loaded it.
        """
        config = effective_config(config)
        if not self.loaded or not self.matches(config):
            await self.load(config, token, deadline)
        self.queued += 1
        self.last_used = time.monotonic()
        started = threading.Event()

        def work():
            started.set()
            self.queued -= 1
            if token is not None and token.cancelled:
                raise DaemonError(CANCELLED, "cancelled before the model started")
            self.busy += 1
            try:
                return work_on(self._select_and_load(config, token, deadline))
            finally:
                self.busy -= 1
                self.last_used = time.monotonic()

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        except asyncio.CancelledError:
            if token is not None:
                token.cancel("request cancelled")  # the engine sees it at its next check; the queue moves on
            if not started.is_set():
                self.queued = max(0, self.queued - 1)
            raise
        except DaemonError:
            raise
        except Exception as e:  # noqa: BLE001
            raise translate(e) from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

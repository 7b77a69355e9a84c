"""The daemon's only door to ``storytransformer.engine`` (the language model).

The engine is optional and heavy, so everything goes through here:

* importing it lazily, and turning "not installed / not built yet / failed to
  load" into one clear ``ENGINE_UNAVAILABLE`` error instead of a traceback;
* one worker thread that runs every model call in order (one resident model,
  never two generations fighting over the same GPU memory);
* load/unload and the idle clock that unloads an unused model.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from .protocol import CANCELLED, ENGINE_UNAVAILABLE, DaemonError

log = logging.getLogger(__name__)

ENGINE_MODULE = "storytransformer.engine"
_LOADERS = ("load_engine", "create_engine", "get_engine", "open_engine")


def _call(fn: Callable, *args, **optional):
    """Call ``fn`` passing only the optional keywords its signature accepts (cancel, progress, ...)."""
    try:
        params = inspect.signature(fn).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        kw = {k: v for k, v in optional.items() if takes_any or k in params}
    except (TypeError, ValueError):
        kw = {}
    return fn(*args, **kw)


class EngineAdapter:
    def __init__(self, on_state: Callable[[dict], None] | None = None, module: str = ENGINE_MODULE):
        self._module_name = module
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._on_state = on_state or (lambda state: None)
        self._load_lock = asyncio.Lock()
        self.engine: Any = None
        self.state = "unloaded"  # unloaded | loading | ready | failed
        self.error = ""
        self.model = ""
        self.device = ""
        self.loaded_at: float | None = None
        self.last_used = time.monotonic()
        self.busy = 0
        self.queued = 0

    # -- the module -------------------------------------------------------
    def module(self):
        try:
            return importlib.import_module(self._module_name)
        except ImportError as e:
            raise DaemonError(ENGINE_UNAVAILABLE, f"the language-model engine is not available ({e}); "
                              "install the 'engine' extra (pip install 'storytransformer[engine]')") from None
        except Exception as e:  # a broken engine must not take the daemon down
            raise DaemonError(ENGINE_UNAVAILABLE, f"the language-model engine failed to import: {type(e).__name__}: {e}") from None

    def _loader(self, mod) -> Callable:
        for name in _LOADERS:
            fn = getattr(mod, name, None)
            if callable(fn):
                return fn
        cls = getattr(mod, "Engine", None)
        if cls is not None and callable(getattr(cls, "from_config", None)):
            return cls.from_config
        raise DaemonError(ENGINE_UNAVAILABLE, f"{self._module_name} has no engine loader "
                          f"(expected one of {', '.join(_LOADERS)} or Engine.from_config)")

    # -- state ------------------------------------------------------------
    def status(self) -> dict:
        available, why = True, ""
        if self.engine is None:
            try:
                self.module()
            except DaemonError as e:
                available, why = False, e.message
        return {
            "state": self.state, "available": available, "unavailable_reason": why, "error": self.error,
            "model": self.model, "device": self.device, "busy": self.busy, "queued": self.queued,
            "loaded_for_s": round(time.monotonic() - self.loaded_at, 1) if self.loaded_at else None,
            "idle_s": round(time.monotonic() - self.last_used, 1),
        }

    def _set_state(self, state: str, error: str = "") -> None:
        self.state, self.error = state, error
        try:
            self._on_state(self.status())
        except Exception:  # noqa: BLE001 - notifying is best effort
            log.exception("engine state notification failed")

    # -- load / unload ----------------------------------------------------
    async def load(self, engine_config) -> dict:
        async with self._load_lock:
            if self.engine is not None:
                return self.status()
            mod = self.module()
            loader = self._loader(mod)
            self._set_state("loading")
            loop = asyncio.get_running_loop()
            try:
                engine = await loop.run_in_executor(self._executor, lambda: _call(loader, engine_config))
            except DaemonError:
                self._set_state("failed")
                raise
            except Exception as e:  # out of memory, missing weights, bad config: report, keep running
                log.exception("engine failed to load")
                self._set_state("failed", f"{type(e).__name__}: {e}")
                raise DaemonError(ENGINE_UNAVAILABLE, f"the engine failed to load: {type(e).__name__}: {e}") from None
            self.engine = engine
            self.model = str(getattr(engine, "model_name", "") or getattr(engine_config, "model", "") or "default")
            self.device = str(getattr(engine, "device", "") or getattr(engine_config, "device", ""))
            self.loaded_at = self.last_used = time.monotonic()
            self._set_state("ready")
            return self.status()

    async def unload(self, reason: str = "requested") -> dict:
        async with self._load_lock:
            if self.engine is None:
                return self.status()
            engine, self.engine = self.engine, None
            loop = asyncio.get_running_loop()

            def free():
                for name in ("close", "unload"):
                    fn = getattr(engine, name, None)
                    if callable(fn):
                        fn()
                        break
                try:  # give GPU memory back now, not at the next garbage collection
                    import gc
                    import sys

                    gc.collect()
                    torch = sys.modules.get("torch")
                    if torch is not None and torch.cuda.is_available():
                        torch.cuda.empty_cache()
                except Exception:  # noqa: BLE001
                    pass

            await loop.run_in_executor(self._executor, free)
            self.loaded_at = None
            log.info("engine unloaded (%s)", reason)
            self._set_state("unloaded")
            return self.status()

    def idle_for(self) -> float:
        return 0.0 if self.busy or self.queued else time.monotonic() - self.last_used

    # -- calls ------------------------------------------------------------
    async def call(self, method: str, *args, engine_config=None, cancel: threading.Event | None = None,
                   progress: Callable[[str, float | None], None] | None = None) -> Any:
        """Run ``engine.<method>(*args)`` on the engine thread, loading the model first when needed."""
        if self.engine is None:
            await self.load(engine_config)
        fn = getattr(self.engine, method, None)
        if not callable(fn):
            raise DaemonError(ENGINE_UNAVAILABLE, f"this engine cannot {method}")
        cancel = cancel or threading.Event()
        self.queued += 1
        self.last_used = time.monotonic()

        started = threading.Event()

        def work():
            started.set()
            self.queued -= 1
            if cancel.is_set():
                raise DaemonError(CANCELLED, "cancelled before the model started")
            self.busy += 1
            try:
                return _call(fn, *args, cancel=cancel, progress=progress)
            finally:
                self.busy -= 1
                self.last_used = time.monotonic()

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, work)
        except asyncio.CancelledError:
            cancel.set()  # the model call sees it at its next check; the queue moves on
            if not started.is_set():
                self.queued -= 1
            raise

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

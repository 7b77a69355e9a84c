"""Watching registered roots for changes made outside the editor (git checkout, other tools).

watchdog's observer thread only records *which* paths changed, per root;
an asyncio task waits for a quiet moment (``debounce_s``, at most
``max_batch_delay_s`` after the first event) and hands the whole batch to
one reload pass. So a checkout that touches 5,000 files costs one or a few
passes, not 5,000, and a single save is seen within a fraction of a second.
When the kernel's event queue overflows, or a batch is very large, the root
is simply rescanned.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Awaitable, Callable

from storytransformer.config import ALWAYS_EXCLUDED

log = logging.getLogger(__name__)

RESCAN_THRESHOLD = 1000  # more paths than this in one batch: rescan the root instead


def _event_types():
    from watchdog import events as e

    return [e.FileCreatedEvent, e.FileModifiedEvent, e.FileDeletedEvent, e.FileMovedEvent, e.FileClosedEvent,
            e.DirCreatedEvent, e.DirDeletedEvent, e.DirMovedEvent]


class _OverflowSpy(logging.Handler):
    """watchdog only logs an inotify queue overflow; turn that log line into a rescan."""

    def __init__(self, on_overflow: Callable[[], None]):
        super().__init__(logging.WARNING)
        self.on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.on_overflow()


class RootWatcher:
    """Watches many roots; calls ``on_batch(root, paths, rescan)`` (async) once per coalesced burst."""

    def __init__(self, on_batch: Callable[[str, set[str], bool], Awaitable[None]], debounce_s: float = 0.1,
                 max_batch_delay_s: float = 0.5):
        self.on_batch = on_batch
        self.debounce_s = debounce_s
        self.max_batch_delay_s = max(max_batch_delay_s, debounce_s)
        self._lock = threading.Lock()
        self._pending: dict[str, set[str]] = {}
        self._rescan: set[str] = set()
        self._first_event = 0.0
        self._last_event = 0.0
        self._watches: dict[str, object] = {}
        self._observer = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._spy: _OverflowSpy | None = None
        self.batches = 0  # for status and tests

    # -- setup ------------------------------------------------------------
    def start(self) -> None:
        """Start the observer thread (raises ImportError without watchdog)."""
        from watchdog.observers import Observer

        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()
        self._task = asyncio.create_task(self._drain(), name="watcher-batches")
        self._spy = _OverflowSpy(self._overflowed)
        logging.getLogger("watchdog").addHandler(self._spy)

    async def stop(self) -> None:
        if self._spy:
            logging.getLogger("watchdog").removeHandler(self._spy)
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self._observer:
            self._observer.stop()
            await asyncio.to_thread(self._observer.join, 2)

    def watch(self, root: str) -> None:
        if root in self._watches or self._observer is None:
            return
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                watcher._record(root, event)

        try:
            self._watches[root] = self._observer.schedule(Handler(), root, recursive=True, event_filter=_event_types())
        except OSError as e:  # e.g. the inotify watch limit: say how to raise it, keep serving
            log.error("cannot watch %s: %s (on Linux, raise fs.inotify.max_user_watches)", root, e)

    def unwatch(self, root: str) -> None:
        w = self._watches.pop(root, None)
        if w is not None and self._observer is not None:
            try:
                self._observer.unschedule(w)
            except (KeyError, OSError):
                pass
        with self._lock:
            self._pending.pop(root, None)
            self._rescan.discard(root)

    @property
    def roots(self) -> list[str]:
        return list(self._watches)

    # -- observer thread --------------------------------------------------
    def _record(self, root: str, event) -> None:
        if event.event_type == "modified" and event.is_directory:
            return
        paths = [os.fsdecode(event.src_path)]
        if getattr(event, "dest_path", ""):
            paths.append(os.fsdecode(event.dest_path))
        keep = []
        for p in paths:
            rel = os.path.relpath(p, root)
            if rel.startswith(".."):
                continue
            if any(part in ALWAYS_EXCLUDED for part in rel.split(os.sep)):
                continue
            keep.append(os.path.normpath(p))
        if not keep:
            return
        now = time.monotonic()
        with self._lock:
            if not self._pending and not self._rescan:
                self._first_event = now
            self._last_event = now
            self._pending.setdefault(root, set()).update(keep)
        self._poke()

    def _overflowed(self) -> None:
        now = time.monotonic()
        with self._lock:
            if not self._pending and not self._rescan:
                self._first_event = now
            self._last_event = now
            self._rescan.update(self._watches)
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # loop closing
                pass

    # -- event loop -------------------------------------------------------
    async def _drain(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            # wait for the burst to go quiet, but never longer than max_batch_delay_s after its first event
            while True:
                with self._lock:
                    now = time.monotonic()
                    quiet_at = self._last_event + self.debounce_s
                    deadline = self._first_event + self.max_batch_delay_s
                wait = min(quiet_at, deadline) - now
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            with self._lock:
                pending, self._pending = self._pending, {}
                rescan, self._rescan = self._rescan, set()
            self.batches += 1
            for root in set(pending) | rescan:
                paths = pending.get(root, set())
                try:
                    await self.on_batch(root, paths, root in rescan or len(paths) > RESCAN_THRESHOLD)
                except Exception:  # noqa: BLE001 - one bad batch must not stop watching
                    log.exception("reloading %d changed paths under %s failed", len(paths), root)

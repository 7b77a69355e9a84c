"""File-change batches for ``check --watch``: watchdog events, settled into one batch per burst.

An editor's save is several events (a temporary file, a rename, a modify) and a ``git checkout``
hundreds: re-checking on each would check half-written trees. :func:`change_batches` waits until no
relevant event has come for ``quiet_s`` and then yields the changed paths together.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from .config import ALWAYS_EXCLUDED

INSTALL_HINT = "pip install 'storytransformer[daemon]' (watchdog)"


class WatchUnavailable(RuntimeError):
    """watchdog is not installed, or a path cannot be watched."""


def _ignored(path: str) -> bool:
    """Version control, caches and environments: never story files, and busy (a `git status`)."""
    return any(part in ALWAYS_EXCLUDED for part in path.replace(os.sep, "/").split("/"))


@contextmanager
def watching(paths: Iterable[str]):
    """A queue of changed file paths under ``paths`` (directories recursively; a file through its
    directory). The observer runs in watchdog's threads and stops on exit."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:
        raise WatchUnavailable(f"--watch needs watchdog: {INSTALL_HINT}") from None

    changes: queue.Queue[str] = queue.Queue()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:
            if event.event_type in ("opened", "closed_no_write"):
                return  # reads, not changes (watchdog 5+ reports them on Linux)
            if event.is_directory and event.event_type == "modified":
                return  # a directory's own time stamp: its files report their own changes
            for p in (event.src_path, getattr(event, "dest_path", "")):
                if p and not _ignored(os.fsdecode(p)):
                    changes.put(os.path.abspath(os.fsdecode(p)))

    observer = Observer()
    handler = Handler()
    scheduled: set[str] = set()
    for path in paths:
        target = os.path.abspath(path)
        recursive = os.path.isdir(target)
        if not recursive:
            target = os.path.dirname(target) or "."
        if target in scheduled:
            continue
        try:
            observer.schedule(handler, target, recursive=recursive)
        except OSError as e:
            raise WatchUnavailable(f"{path}: cannot watch: {e.strerror or e}") from None
        scheduled.add(target)
    observer.start()
    try:
        yield changes
    finally:
        observer.stop()
        observer.join(timeout=5)


def change_batches(changes: queue.Queue, relevant: Callable[[str], bool], quiet_s: float = 0.3,
                   stop: threading.Event | None = None) -> Iterator[set[str]]:
    """Yield each burst of relevant changed paths once ``quiet_s`` has passed without another
    (``stop`` set: return). Irrelevant events neither start nor extend a burst."""
    while stop is None or not stop.is_set():
        try:
            first = changes.get(timeout=0.5)
        except queue.Empty:
            continue
        if not relevant(first):
            continue
        batch = {first}
        while True:
            try:
                path = changes.get(timeout=quiet_s)
            except queue.Empty:
                break
            if relevant(path):
                batch.add(path)
        yield batch

"""The registered workspace roots: one core EditingSession per root, kept current.

Every method here is synchronous and takes the root's lock: the service
runs them in worker threads so a long reload never stalls the event loop,
and two clients touching the same root never see a half-updated workspace.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from storytransformer.config import CONFIG_FILES, Config, load_config
from storytransformer.lint import Linter
from storytransformer.session import EditingSession, Overlay, is_story_file
from storytransformer.workspace import Workspace, discover, within

from .rpc import Packed

log = logging.getLogger(__name__)


def norm_path(path: str) -> str:
    """One spelling per file: absolute and normalised (symlinks kept, as the editor shows them)."""
    return os.path.normpath(os.path.abspath(os.path.expanduser(path)))


inside_real = within  # the core's rule: symbolic links resolved, is ``path`` ``root`` or under it?


def drop_escaping(session: EditingSession, root: str) -> None:
    """Forget files that a symbolic link inside ``root`` brought in from outside it: the daemon reads only its roots."""
    ws = session.workspace
    for f in list(ws.files) + list(ws.problems):
        if not inside_real(f, root):
            log.warning("ignoring %s: a symbolic link leads out of the workspace root %s", f, root)
            session.remove(f)


@dataclass
class Root:
    """One registered root and everything derived from it: the core's :class:`EditingSession`
    (workspace, editors' overlays and versions, template tally) under a lock, and a generation."""

    path: str
    session: EditingSession
    lock: threading.RLock = field(default_factory=threading.RLock)
    generation: int = 0  # bumped on every change; keys the findings caches
    clients: set[int] = field(default_factory=set)
    cache: dict[str, tuple[int, list, Packed]] = field(default_factory=dict)  # path -> (generation, wire, encoded)
    single_file: bool = False  # a file opened outside every registered folder: a root of its own

    @property
    def config(self) -> Config:
        return self.session.config

    @property
    def workspace(self) -> Workspace:
        return self.session.workspace

    @property
    def overlays(self) -> dict[str, Overlay]:
        return self.session.overlays

    @property
    def linter(self) -> Linter:
        """Built on first use: only clients that ask the daemon for deterministic findings need it."""
        return self.session.linter

    # -- building ---------------------------------------------------------
    @classmethod
    def open(cls, path: str) -> "Root":
        config = load_config(start=Path(path))
        session = EditingSession.load([path], config)
        drop_escaping(session, path)
        return cls(path, session)

    @classmethod
    def open_file(cls, path: str) -> "Root":
        """A root of one loose file, served from the text its client sends, never read from disk.

        Only registered folders are read from disk: a client that names any other
        path (``/etc/passwd``) gets findings of the text it sent itself, nothing more.
        """
        config = load_config(start=Path(path).parent)
        return cls(path, EditingSession(config), single_file=True)

    def contains(self, path: str) -> bool:
        if self.single_file:
            return path == self.path
        return path == self.path or path.startswith(self.path.rstrip(os.sep) + os.sep)

    def wants(self, path: str) -> bool:
        """Whether a file at ``path`` is a story file of this root to read from disk (the core's
        :func:`~storytransformer.session.is_story_file`, the walk's rule).

        A loose file is never read from disk, and neither is a path whose symbolic links lead out of the root.
        """
        if self.single_file:
            return False
        return is_story_file(path, self.config, self.path)

    def is_config_file(self, path: str) -> bool:
        return os.path.dirname(path) == self.path and os.path.basename(path) in CONFIG_FILES

    def _changed(self) -> None:
        # No template recount here: the session's tally follows every edit.
        self.generation += 1
        self.cache.clear()

    # -- editor overlays --------------------------------------------------
    def set_overlay(self, path: str, text: str, version: int, client: int) -> bool:
        """Replace the file's stories by unsaved text; False when ``version`` is older than what we have.
        Raises ValueError when the text cannot be read as stories (the file is then out of the index)."""
        with self.lock:
            edit = self.session.set_overlay(path, version, text, client)
            if edit is None:
                return False
            self._changed()
            if edit.problem:
                raise ValueError(edit.problem)
            return True

    def close_overlay(self, path: str, client: int | None = None) -> bool:
        """Drop the overlay (of ``client``, if given) and go back to the file on disk."""
        with self.lock:
            edit = self.session.close_overlay(path, client) if not self.single_file else self._close_loose(path, client)
            if edit is None:
                return False
            self._changed()
            return True

    def _close_loose(self, path: str, client: int | None):
        """A loose file is never read from disk: closing it forgets its text."""
        cur = self.session.overlays.get(path)
        if cur is None or (client is not None and cur.owner != client):
            return None
        return self.session.remove(path)

    def drop_client(self, client: int) -> list[str]:
        with self.lock:
            if self.single_file:
                paths = [p for p, o in self.overlays.items() if o.owner == client]
                for p in paths:
                    self.session.remove(p)
            else:
                paths = self.session.drop_owner(client)
            if paths:
                self._changed()
            self.clients.discard(client)
            return paths

    # -- changes on disk --------------------------------------------------
    def apply_disk_changes(self, paths: set[str], rescan: bool) -> tuple[list[str], bool]:
        """Reload changed files (or rescan everything); files open in an editor keep their overlay.

        Returns the files whose stories may have changed and whether the whole root was re-read.
        """
        if rescan or any(self.is_config_file(p) for p in paths):
            return self._rebuild(), True
        with self.lock:
            changed: list[str] = []
            for p in sorted(paths):
                if p in self.overlays:
                    continue
                if os.path.isdir(p):  # a directory appeared (moved in, checked out): take its story files
                    files, _ = discover([p], self.config)
                    for f in files:
                        f = norm_path(f)
                        if self.wants(f) and f not in self.overlays:
                            self.session.revert(f)
                            changed.append(f)
                    continue
                if os.path.isfile(p):
                    if self.wants(p):
                        self.session.revert(p)
                        changed.append(p)
                    continue
                # gone: a file, or a whole directory
                prefix = p.rstrip(os.sep) + os.sep
                gone = [f for f in list(self.workspace.files) + list(self.workspace.problems)
                        if (f == p or f.startswith(prefix)) and f not in self.overlays]
                for f in gone:
                    self.session.remove(f)
                    changed.append(f)
            if changed:
                self._changed()
            return changed, False

    def _rebuild(self) -> list[str]:
        """Re-read the configuration and every file (config edits, event-queue overflows, huge bursts).

        The new workspace is read without the lock, so findings keep coming from the old one
        meanwhile; only the swap (and re-applying the editors' unsaved text) holds it.
        """
        config = self.config
        try:
            config = load_config(start=Path(self.path).parent if self.single_file else Path(self.path))
        except Exception as e:  # noqa: BLE001 - a broken config while the user types it: keep the last good one
            log.warning("keeping the previous configuration of %s: %s", self.path, e)
        session = EditingSession.load([] if self.single_file else [self.path], config)
        if not self.single_file:
            drop_escaping(session, self.path)
        with self.lock:
            before = set(self.workspace.files)
            for path, ov in self.overlays.items():
                edit = session.set_overlay(path, ov.version, ov.text, ov.owner)
                if edit is not None and edit.problem:
                    log.warning("overlay of %s no longer parses: %s", path, edit.problem)
            self.session = session
            ws = session.workspace
            self.generation += 1
            self.cache.clear()
        return sorted(before | set(ws.files))

    # -- reading ----------------------------------------------------------
    def cached_findings(self, path: str) -> tuple[int, list, Packed] | None:
        """The cached answer if it is current; lock-free (one dict read), for the event loop's fast path."""
        hit = self.cache.get(path)
        return hit if hit is not None and hit[0] == self.generation else None

    def findings(self, path: str, to_wire) -> tuple[int, list, Packed]:
        """Wire-ready (and already encoded) findings of one file, cached until the root changes."""
        with self.lock:
            hit = self.cache.get(path)
            if hit is not None and hit[0] == self.generation:
                return hit
            wire = [to_wire(f) for f in self.session.check_file(path)]
            out = (self.generation, wire, Packed(wire))
            self.cache[path] = out
            return out

    def summary(self) -> dict:
        with self.lock:
            return {
                "root": self.path,
                "config": self.config.source,
                "files": len(self.workspace.files),
                "stories": len(self.workspace),
                "problems": [str(p) for p in self.workspace.problems.values() if p.kind == "error"],
                "clients": len(self.clients),
                "overlays": len(self.overlays),
            }


class Roots:
    """All registered roots; a path belongs to the innermost root that contains it."""

    def __init__(self):
        self.by_path: dict[str, Root] = {}

    def for_path(self, path: str) -> Root | None:
        """The innermost folder root holding ``path``, else the loose-file root of ``path`` itself."""
        folders = [r for r in self.by_path.values() if not r.single_file and r.contains(path)]
        if folders:
            return max(folders, key=lambda r: len(r.path))
        loose = self.by_path.get(path)
        return loose if loose is not None and loose.single_file else None

    def __iter__(self):
        return iter(list(self.by_path.values()))

    def __len__(self) -> int:
        return len(self.by_path)

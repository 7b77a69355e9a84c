"""Files -> stories: finding story files, reading them safely, and keeping them up to date.

Bad files never stop a run: each one yields a :class:`FileProblem` that names
the file (and the line, for invalid UTF-8) and the run goes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

from .config import ALWAYS_EXCLUDED, Config
from .formats import detect_format, read_source
from .formats.base import normalise
from .story import SourceFile, Story


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file that could not be read (``error``) or was skipped on purpose (``notice``)."""

    path: str
    message: str
    line: int | None = None  # 1-based, where known
    kind: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


def matches_globs(rel: str, globs: Iterable[str]) -> bool:
    """Does the relative POSIX path ``rel`` match one of ``globs`` ("**/" also matches at the top)?"""
    p = PurePosixPath(rel)
    for g in globs:
        if fnmatch(rel, g) or p.match(g) or (g.startswith("**/") and (fnmatch(rel, g[3:]) or p.match(g[3:]))):
            return True
    return False


def discover(paths: Iterable[str | Path], config: Config) -> tuple[list[str], list[FileProblem]]:
    """Story files under ``paths`` (files named explicitly are always taken), in a stable order."""
    found: list[str] = []
    problems: list[FileProblem] = []
    seen_dirs: set[tuple[int, int]] = set()

    def walk(top: Path, root: Path) -> Iterator[str]:
        try:
            st = top.stat()
        except OSError as e:
            problems.append(FileProblem(str(top), f"cannot read directory: {e.strerror or e}"))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            problems.append(FileProblem(str(top), "skipped: directory already visited (symlink loop)", kind="notice"))
            return
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(top), key=lambda e: e.name)
        except OSError as e:
            problems.append(FileProblem(str(top), f"cannot list directory: {e.strerror or e}"))
            return
        for entry in entries:
            rel = os.path.relpath(entry.path, root).replace(os.sep, "/")
            try:
                is_dir = entry.is_dir()
                is_file = entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                if entry.name in ALWAYS_EXCLUDED or matches_globs(rel, config.exclude) or matches_globs(rel + "/", config.exclude):
                    continue
                yield from walk(Path(entry.path), root)
            elif is_file:
                if matches_globs(rel, config.exclude) or not matches_globs(rel, config.include):
                    continue
                yield entry.path
            elif entry.is_symlink():
                problems.append(FileProblem(entry.path, "skipped: broken symbolic link", kind="notice"))

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(walk(p, p))
        elif p.is_file():
            found.append(str(p))
        elif p.is_symlink():
            problems.append(FileProblem(str(p), "broken symbolic link or symlink loop"))
        else:
            problems.append(FileProblem(str(p), "no such file or directory"))
    # de-duplicate while keeping order
    return list(dict.fromkeys(found)), problems


def decode(path: str, data: bytes) -> str | FileProblem:
    """The text of a story file, or why it cannot be used."""
    if b"\x00" in data[:8192]:
        return FileProblem(path, "skipped: binary file", kind="notice")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return FileProblem(path, f"invalid UTF-8 at byte {e.start} (byte 0x{data[e.start]:02x}); save the file as UTF-8", line=line)


def read_bytes(path: str, config: Config) -> bytes | FileProblem:
    """The file's bytes, unless it is too large or unreadable."""
    try:
        size = os.path.getsize(path)
        if size > config.max_file_bytes:
            return FileProblem(path, f"skipped: {size / 1e6:.1f} MB is larger than max_file_bytes "
                               f"({config.max_file_bytes / 1e6:.1f} MB)", kind="notice")
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        return FileProblem(path, f"cannot read: {e.strerror or e}")


def load_file(path: str, config: Config, cache=None, data: bytes | None = None) -> SourceFile | FileProblem:
    """Read and parse one story file (``data``: its bytes when already read)."""
    if data is None:
        data = read_bytes(path, config)
        if isinstance(data, FileProblem):
            return data
    digest = ""
    if cache is not None:
        from .cache import content_digest

        digest = content_digest(data)
        cached = cache.source(digest, path)
        if cached is not None:
            cached.digest = digest
            return cached
    text = decode(path, data)
    if isinstance(text, FileProblem):
        return text
    try:
        source = read_source(path, text, config)
    except ValueError as e:
        return FileProblem(path, str(e))
    if cache is not None:
        source.digest = digest
        cache.put_source(digest, source)
    return source


class Workspace:
    """Every story of many files; one file's stories can be replaced at a time.

    Keeps an index from normalised story text to stories so the uniqueness
    rule needs no pass over the whole workspace after a one-line edit.
    """

    def __init__(self, config: Config | None = None, cache=None):
        self.config = config or Config()
        self.cache = cache  # a ResultCache, or None to parse everything
        self.files: dict[str, SourceFile] = {}
        self.problems: dict[str, FileProblem] = {}
        self.by_text: dict[str, dict[tuple[str, str], Story]] = {}

    # -- building ---------------------------------------------------------
    @classmethod
    def from_paths(cls, paths: Iterable[str | Path], config: Config, cache=None) -> "Workspace":
        ws = cls(config, cache)
        files, problems = discover(paths, config)
        for p in problems:
            ws.problems[p.path] = p
        for path in files:
            ws.load(path)
        return ws

    def load(self, path: str, data: bytes | None = None) -> SourceFile | FileProblem:
        result = load_file(path, self.config, self.cache, data)
        if isinstance(result, FileProblem):
            self.remove(path)
            self.problems[path] = result
        else:
            self.problems.pop(path, None)
            self._replace(path, result)
        return result

    def set_text(self, path: str, text: str) -> SourceFile:
        """Replace one file's stories from its (possibly unsaved) text."""
        source = read_source(path, text, self.config, detect_format(path, self.config))
        self.problems.pop(path, None)
        self._replace(path, source)
        return source

    def remove(self, path: str) -> None:
        old = self.files.pop(path, None)
        if old:
            for s in old.stories:
                self._unindex(s)
        self.problems.pop(path, None)

    def _replace(self, path: str, source: SourceFile) -> None:
        self.remove(path)
        self.files[path] = source
        for s in source.stories:
            self.by_text.setdefault(normalise(s.text), {})[(s.file, s.id)] = s

    def _unindex(self, s: Story) -> None:
        key = normalise(s.text)
        group = self.by_text.get(key)
        if group is not None:
            group.pop((s.file, s.id), None)
            if not group:
                del self.by_text[key]

    # -- reading ----------------------------------------------------------
    def stories(self) -> Iterator[Story]:
        for source in self.files.values():
            yield from source.stories

    def same_text(self, story: Story) -> list[Story]:
        """Other stories whose normalised text equals this one's."""
        group = self.by_text.get(normalise(story.text), {})
        return [s for k, s in group.items() if k != (story.file, story.id)]

    def __len__(self) -> int:
        return sum(len(f.stories) for f in self.files.values())


_matches = matches_globs  # the name used before it was public

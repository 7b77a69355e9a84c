"""Files -> stories: finding story files, reading them safely, and keeping them up to date.

Bad files never stop a run: each one yields a :class:`FileProblem` that names
the file (and the line, for invalid UTF-8) and the run goes on.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

from .config import ALWAYS_EXCLUDED, Config
from .edits import file_kind
from .findings import FileProblem  # noqa: F401 (re-exported: defined next to the findings, below the cache)
from .formats import detect_format, read_source
from .formats.base import normalise, split_explicit_id
from .formats.csv import has_story_column
from .formats.text import COMMENT as TEXT_COMMENT
from .parse import MEANS_MARKER, ROLE_MARKER
from .story import SourceFile, Story


def matches_globs(rel: str, globs: Iterable[str]) -> bool:
    """Does the relative POSIX path ``rel`` match one of ``globs`` ("**/" also matches at the top)?"""
    p = PurePosixPath(rel)
    for g in globs:
        if fnmatch(rel, g) or p.match(g) or (g.startswith("**/") and (fnmatch(rel, g[3:]) or p.match(g[3:]))):
            return True
    return False


# -- which plain text files are backlogs -----------------------------------------------------------

SAMPLE_LINES = 200  # lines of a plain text file looked at to decide whether it is a backlog
SAMPLE_BYTES = 64 * 1024  # at most this much of it is read from disk for that
MIN_STORY_SHARE = 0.5  # of its non-blank, non-comment lines
MIN_STORIES = 2
_GENERIC_GLOB = re.compile(r"^(?:\*\*/)*\*\.[A-Za-z0-9]+$")  # "**/*.txt", "*.text": names no file in particular


def story_line(line: str) -> bool:
    """Whether one line of plain text reads as a story: "As a/an/the ..." (after an optional id such as
    ``US-12:``) or "... I want/need/can ..." near its start, the markers the parser recognises."""
    _, skip = split_explicit_id(line)
    body = line[skip:]
    return bool(ROLE_MARKER.match(body)) or bool(MEANS_MARKER.search(body[:80]))


def looks_like_backlog(text: str) -> bool:
    """Most (``MIN_STORY_SHARE``, and at least ``MIN_STORIES`` unless the file has one line) of the first
    ``SAMPLE_LINES`` non-blank, non-comment lines of ``text`` are stories."""
    lines = 0
    stories = 0
    for line in text.splitlines():
        if not line.strip() or TEXT_COMMENT.match(line):
            continue
        lines += 1
        stories += story_line(line)
        if lines >= SAMPLE_LINES:
            break
    return stories > 0 and stories >= min(MIN_STORIES, lines) and stories >= MIN_STORY_SHARE * lines


def named_as_backlog(path: str, root: str | None, config: Config) -> bool:
    """Whether the file's name says it is a backlog (``backlog_names``), or an ``include`` or ``formats``
    glob more specific than a bare suffix ("**/*.txt") names it."""
    name = os.path.basename(path).lower()
    if any(fnmatch(name, g.lower()) for g in config.backlog_names):
        return True
    rel = os.path.relpath(path, root).replace(os.sep, "/") if root else path.replace(os.sep, "/")
    named = [g for g in list(config.include) + list(config.formats) if not _GENERIC_GLOB.match(g)]
    return matches_globs(rel, named)


def _head(path: str) -> str | None:
    """The start of the file on disk (``SAMPLE_BYTES``), or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read(SAMPLE_BYTES)
    except OSError:
        return None
    return data.decode("utf-8-sig", errors="replace")


def is_backlog(path: str, text: str | None, config: Config, root: str | None = None) -> bool:
    """The one rule for whether a file found by a walk (or opened in an editor) is a story file by its
    content. Markdown and Gherkin files always are (their readers take only what reads as a story); a
    CSV file is when its header has a story column (a data table is not a backlog export); a plain
    text file is when :func:`named_as_backlog` says so or :func:`looks_like_backlog` of its ``text``
    (its start is enough; None: read from disk) does. ``root`` is what ``include`` globs are
    relative to. Files named explicitly (``check FILE``) never ask.
    """
    fmt = detect_format(path, config) or "text"
    if not config.detect_backlogs or fmt not in ("text", "csv") or named_as_backlog(path, root, config):
        return True
    if text is None:
        text = _head(path)
        if text is None or "\x00" in text[:8192]:
            return True  # unreadable or binary (a UTF-16 backlog?): reading it says why
    if fmt == "csv":
        return not text.strip() or has_story_column(text, tuple(config.csv.story_columns))
    return looks_like_backlog(text)


def within(path: str, root: str) -> bool:
    """Whether ``path``, with every symbolic link resolved, is ``root`` or under it (also resolved)."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def _dir_excluded(name: str, rel: str, config: Config) -> bool:
    return name in ALWAYS_EXCLUDED or matches_globs(rel, config.exclude) or matches_globs(rel + "/", config.exclude)


def _file_wanted(rel: str, config: Config) -> bool:
    return not matches_globs(rel, config.exclude) and matches_globs(rel, config.include)


def in_tree(path: str, root: str, config: Config, resolve: bool = True, text: str | None = None) -> bool:
    """Whether a walk of ``root`` (:func:`discover`) takes the file at ``path``.

    The one rule for every reader of a tree (``check``, the language server's scan and
    its reloads, the daemon's roots): the path is under ``root``, no directory on the way
    is excluded, the file matches the configured globs, and (with ``resolve``) the path
    with its symbolic links resolved is still inside ``root``: a link out of the tree is
    never followed. ``resolve=False`` asks only the first three questions (a file an editor
    opened is linted from its text even when it lies behind such a link; it is not read
    from disk). Last, a plain text file must be a backlog (:func:`is_backlog`, from ``text``
    when given, else from the start of the file on disk).
    """
    rel = os.path.relpath(path, root).replace(os.sep, "/")
    if rel in (".", "..") or rel.startswith("../"):
        return False
    parts = rel.split("/")
    for i in range(1, len(parts)):
        if _dir_excluded(parts[i - 1], "/".join(parts[:i]), config):
            return False
    if not _file_wanted(rel, config):
        return False
    if resolve and not within(path, root):
        return False
    if text is None and not resolve and not within(path, root):
        return True  # behind a link out of the root: never read from disk, not even to look
    return is_backlog(path, text, config, root)


def not_regular(path: str, mode: int) -> FileProblem:
    return FileProblem(path, f"not a regular file ({file_kind(mode)}); StoryTransformer reads story files "
                             "only (reading standard input is not supported)")


def _unusable(path: str, e: OSError) -> FileProblem:
    """Why a path named on the command line cannot be used, in words."""
    try:
        is_link = os.path.islink(path)
    except OSError:
        is_link = False
    if e.errno == errno.ELOOP:
        return FileProblem(path, "symbolic link loop")
    if is_link and e.errno == errno.ENOENT:
        return FileProblem(path, f"broken symbolic link (to {os.readlink(path)!r}, which does not exist)")
    if e.errno == errno.ENOENT:
        return FileProblem(path, "no such file or directory")
    return FileProblem(path, f"cannot read: {e.strerror or e}")


def identity(st: os.stat_result) -> tuple[int, int]:
    """What makes a file the same file, whatever path reaches it (symbolic link, "..", hard link)."""
    return st.st_dev, st.st_ino


def _alias_reason(kept: str, other: str) -> str:
    if os.path.abspath(kept) == os.path.abspath(other):
        return f"named twice, also as {other}"
    if os.path.realpath(kept) == os.path.realpath(other):
        return "another path to it, through a symbolic link or '..'"
    return "a hard link to it"


def discover(paths: Iterable[str | Path], config: Config) -> tuple[list[str], list[FileProblem]]:
    """Story files under ``paths`` (files named explicitly are always taken), each once, in a stable order.

    A walk takes the files the ``include``/``exclude`` globs want and, of plain text files, only
    backlogs (:func:`is_backlog`); the others are passed over silently.

    A file is the same file when its ``(st_dev, st_ino)`` are: however many paths reach it
    (a symbolic link, a ``..``, a hard link), it is returned once, under a path without
    symbolic links where there is one, and every other path is reported as a notice.
    A directory walk never leaves the directory it started from: a symbolic link (to a file
    or a directory) whose target is outside it is skipped with a notice. A path named
    explicitly is followed wherever it leads.
    """
    problems: list[FileProblem] = []
    seen_dirs: set[tuple[int, int]] = set()
    candidates: dict[tuple[int, int], list[str]] = {}

    def add(path: str, st: os.stat_result) -> None:
        paths_of = candidates.setdefault(identity(st), [])
        if path not in paths_of:
            paths_of.append(path)

    def walk(top: str, root: str, root_real: str) -> None:
        try:
            st = os.stat(top)
        except OSError as e:
            problems.append(FileProblem(top, f"cannot read directory: {e.strerror or e}"))
            return
        if identity(st) in seen_dirs:
            problems.append(FileProblem(top, "skipped: directory already visited (a symlink loop or another link to it)", kind="notice"))
            return
        seen_dirs.add(identity(st))
        try:
            entries = sorted(os.scandir(top), key=lambda e: e.name)
        except OSError as e:
            problems.append(FileProblem(top, f"cannot list directory: {e.strerror or e}"))
            return
        for entry in entries:
            rel = os.path.relpath(entry.path, root).replace(os.sep, "/")
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir()
                is_file = entry.is_file()
            except OSError:
                is_link, is_dir, is_file = False, False, False
            if is_dir:
                if _dir_excluded(entry.name, rel, config):
                    continue
            elif is_file:
                if not _file_wanted(rel, config):
                    continue
            elif is_link and not os.path.exists(entry.path):
                problems.append(FileProblem(entry.path, "skipped: broken symbolic link", kind="notice"))
                continue
            else:
                continue  # FIFOs, sockets, devices: never story files
            if is_link and not within(entry.path, root_real):
                problems.append(FileProblem(entry.path, f"skipped: symbolic link to {os.path.realpath(entry.path)}, "
                                            f"outside {root} (name it explicitly to check it)", kind="notice"))
                continue
            if is_dir:
                walk(entry.path, root, root_real)
            elif not is_backlog(entry.path, None, config, root):
                continue  # a plain text file that is no backlog (requirements.txt, notes): not ours
            else:
                try:
                    add(entry.path, entry.stat())
                except OSError as e:
                    problems.append(FileProblem(entry.path, f"cannot read: {e.strerror or e}"))

    for raw in paths:
        p = str(raw)
        try:
            st = os.stat(p)
        except OSError as e:
            problems.append(_unusable(p, e))
            continue
        if stat.S_ISDIR(st.st_mode):
            walk(p, p, os.path.realpath(p))
        elif stat.S_ISREG(st.st_mode):
            add(p, st)
        else:
            problems.append(not_regular(p, st.st_mode))

    found: list[str] = []
    for paths_of in candidates.values():
        plain = [q for q in paths_of if os.path.realpath(q) == os.path.abspath(q)] if len(paths_of) > 1 else paths_of
        kept = (plain or paths_of)[0]
        found.append(kept)
        for other in paths_of:
            if other != kept:
                problems.append(FileProblem(other, f"skipped: the same file as {kept} ({_alias_reason(kept, other)})",
                                            kind="notice"))
    return found, problems


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
    """The file's bytes, unless it is too large, unreadable or not a regular file.

    Opened without blocking and checked with ``fstat``: a path that became a FIFO or a
    device after discovery is reported, never waited on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        return FileProblem(path, f"cannot read: {e.strerror or e}")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return not_regular(path, st.st_mode)
        if st.st_size > config.max_file_bytes:
            return FileProblem(path, f"skipped: {st.st_size / 1e6:.1f} MB is larger than max_file_bytes "
                               f"({config.max_file_bytes / 1e6:.1f} MB)", kind="notice")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    except OSError as e:
        return FileProblem(path, f"cannot read: {e.strerror or e}")
    finally:
        os.close(fd)


def load_file(path: str, config: Config, cache=None, data: bytes | None = None) -> SourceFile | FileProblem:
    """Read and parse one story file (``data``: its bytes when already read)."""
    if data is None:
        data = read_bytes(path, config)
        if isinstance(data, FileProblem):
            return data
    digest = ""
    if cache is not None:
        from .run_cache import content_digest

        # The file's name is part of the key: the format comes from its suffix and story ids from its
        # stem, so two files with the same bytes under other names must not share a parse.
        digest = content_digest(os.path.basename(path).encode("utf-8", "surrogateescape") + b"\0" + data)
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
        # (st_dev, st_ino) of each file read from disk or edited under a path that exists:
        # one file is loaded once, and stories of one file are never duplicates of each other.
        self.identity: dict[str, tuple[int, int]] = {}
        self.by_identity: dict[tuple[int, int], str] = {}

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
        """Read (or take ``data`` as the bytes of) the file at ``path``.

        A file already loaded under another path (a symbolic link, a hard link) is not loaded
        again: ``path`` gets a notice naming the path that holds it.
        """
        key = self._identity_of(path)
        other = self._holder(key, path) if key is not None else None
        if other is not None:
            self.remove(path)
            result = FileProblem(path, f"skipped: the same file as {other}", kind="notice")
            self.problems[path] = result
            return result
        result = load_file(path, self.config, self.cache, data)
        if isinstance(result, FileProblem):
            self.remove(path)
            self.problems[path] = result
        else:
            self.problems.pop(path, None)
            self._replace(path, result)
            self._remember(path, key)
        return result

    def set_text(self, path: str, text: str) -> SourceFile:
        """Replace one file's stories from its (possibly unsaved) text."""
        source = read_source(path, text, self.config, detect_format(path, self.config))
        self.problems.pop(path, None)
        self._replace(path, source)
        self._remember(path, self._identity_of(path))
        return source

    def remove(self, path: str) -> None:
        old = self.files.pop(path, None)
        if old:
            for s in old.stories:
                self._unindex(s)
        self.problems.pop(path, None)
        key = self.identity.pop(path, None)
        if key is not None and self.by_identity.get(key) == path:
            del self.by_identity[key]

    @staticmethod
    def _identity_of(path: str) -> tuple[int, int] | None:
        try:
            return identity(os.stat(path))
        except (OSError, ValueError):
            return None

    def _holder(self, key: tuple[int, int], path: str) -> str | None:
        """Another loaded path that is still the file ``key``, if any."""
        other = self.by_identity.get(key)
        if other is None or other == path:
            return None
        if other in self.files and self._identity_of(other) == key:
            return other
        del self.by_identity[key]  # replaced or deleted since: the identity is free
        self.identity.pop(other, None)
        return None

    def _remember(self, path: str, key: tuple[int, int] | None) -> None:
        old = self.identity.pop(path, None)
        if old is not None and self.by_identity.get(old) == path:
            del self.by_identity[old]
        if key is not None:
            self.identity[path] = key
            self.by_identity.setdefault(key, path)

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
        mine = self.identity.get(story.file)
        return [s for k, s in group.items() if k != (story.file, story.id)
                and not (mine is not None and s.file != story.file and self.identity.get(s.file) == mine)]

    def __len__(self) -> int:
        return sum(len(f.stories) for f in self.files.values())


_matches = matches_globs  # the name used before it was public

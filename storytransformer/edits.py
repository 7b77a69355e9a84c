"""Applying text edits to a file's text, and writing files safely.

How a file is written (:func:`atomic_write`):

1. The path is checked first, and nothing is written when it fails: a symbolic link is
   refused unless ``follow_symlinks`` (then its target is written); so is anything but a
   regular file (a FIFO, a device) and a file the user may not write (a 0444 file is not
   written even by root, who could). Every refusal raises :class:`WriteError`, whose
   message names the file.
2. The new text goes to a temporary file in the same directory, named
   ``.NAME.storytransformer-XXXXXXXX.tmp`` (or ``...-new-XXXXXXXX.tmp``, below), flushed
   to disk. No user's own file has such a name, and the clean-up of temporaries left by a
   killed write removes only these.
3. When replacing the file cannot be noticed (one link, owned by the user, in a group the
   user may set, no extended attributes such as ACLs), the temporary file gets the file's
   mode and group and replaces it by ``rename``: a crash leaves the old file or the new
   one, never a mix. This is what editors call safe-write (vim's ``backupcopy=auto``).
4. Otherwise (hard links, another user's file written by root, ACLs) the file is written
   in place, so it keeps its inode, owner, mode and links: it is opened without following
   links, checked to be still the same inode, space for the new text is reserved
   (``posix_fallocate``) so a full disk fails before a byte changes, and the new bytes are
   written over the old ones, the file truncated to their length and flushed. A failure
   midway writes the old bytes back. Only a crash (power loss, ``SIGKILL``) inside that
   one write can leave a mix; the temporary file (``-new-`` in its name) then still holds
   the whole new text, and the clean-up keeps it unless the file already has that text.

In both cases the file's content is compared with ``expected_digest`` (the content the
edits were computed from) right before the rename or the first write: a file changed on
disk meanwhile is not overwritten (:class:`StaleFileError`). Errors raised by the system
(``ENOSPC``, ``EACCES``) come back as :class:`WriteError` naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import tempfile
import time
from typing import Iterable

from .findings import Fix, TextEdit
from .lines import line_starts, strip_break


class StaleFileError(RuntimeError):
    """The file changed on disk after it was read: writing would lose someone's work."""


class WriteError(OSError):
    """A file that was not written (refused, or the system said no); ``str()`` names the file."""

    def __init__(self, path: str, reason: str, code: int = 0):
        super().__init__(code, reason, path)
        self.path, self.reason = path, reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


_KINDS = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
          (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symbolic link"))


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words ("FIFO", "character device", ...)."""
    return next((name for test, name in _KINDS if test(mode)), "special file")


def newline_of(text: str) -> str:
    i = text.find("\n")
    return "\r\n" if i > 0 and text[i - 1] == "\r" else "\n"


def _line_starts(text: str) -> list[int]:
    """Where each line starts (lines as LSP counts them), then the end of the text."""
    return line_starts(text) + [len(text)]


def apply_edits(text: str, edits: Iterable[TextEdit]) -> str:
    """``text`` with non-overlapping ``edits`` applied (positions in code points)."""
    starts = _line_starts(text)
    nl = newline_of(text)

    def offset(pos) -> int:
        if pos.line >= len(starts) - 1:
            return len(text)
        line_start, next_start = starts[pos.line], starts[pos.line + 1]
        content_end = len(strip_break(text[line_start:next_start])) + line_start
        return min(line_start + pos.character, content_end) if pos.character >= 0 else line_start

    spans = sorted(((offset(e.range.start), offset(e.range.end), e.new_text) for e in edits), reverse=True)
    for (s1, _e1, _), (_s2, e2, _) in zip(spans, spans[1:]):
        if e2 > s1:
            raise ValueError("overlapping edits")
    return _apply(text, spans, nl)


def _apply(text: str, spans, nl: str) -> str:
    pieces = []
    cursor = len(text)
    for s, e, new in spans:  # reverse order
        pieces.append(text[e:cursor])
        pieces.append(new.replace("\n", nl) if nl != "\n" else new)
        cursor = s
    pieces.append(text[:cursor])
    return "".join(reversed(pieces))


def choose_fixes(fixes: Iterable[Fix], taken_lines: Iterable[tuple[int, int]] = ()) -> list[Fix]:
    """A set of fixes whose edits touch disjoint lines (first come, first served): the one place where
    overlapping fixes are resolved, for ``check --fix`` and fix-on-save alike.

    Lines, not characters: a fix is computed on the story as it was, so two fixes of one line (a
    marker rewrite and a note moved out of the same sentence) may each be right alone and wrong
    together even where their characters do not overlap. ``taken_lines`` are ``(first, last)``
    line spans already claimed (a model rewrite applied on save). The fixes left out apply on the
    next pass of ``check --fix`` or the next save, on the text this one produced.
    """
    taken: list[tuple[int, int]] = list(taken_lines)
    chosen = []
    for fix in fixes:
        lines = [(e.range.start.line, e.range.end.line) for e in fix.edits]
        if any(a <= d and c <= b for a, b in lines for c, d in taken):
            continue
        taken.extend(lines)
        chosen.append(fix)
    return chosen


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


TEMP_TAG = "storytransformer"
_MAX_STEM = 200  # leaves room for the tag and mkstemp's 8 characters within a 255-byte name


def _temp_prefix(name: str, journal: bool) -> str:
    return f".{name[:_MAX_STEM]}.{TEMP_TAG}-{'new-' if journal else ''}"


def _remove_stale_temporaries(directory: str, name: str, older_than_s: float) -> None:
    """Our temporary files for ``name`` left by a write that was killed, older than ``older_than_s``.

    Only names this module makes are touched (never a user's ``.name.backup.tmp``). A
    leftover of a rename-write is removed; a leftover of an in-place write (``-new-``) only
    when the file already holds its text, as it may be the only whole copy of it.
    """
    pattern = re.compile(re.escape(_temp_prefix(name, False)) + r"(new-)?[a-z0-9_]{8}\.tmp")
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if not m:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < older_than_s:
                continue
            if m.group(1):
                with open(entry.path, "rb") as a, open(os.path.join(directory, name), "rb") as b:
                    if a.read() != b.read():
                        continue
            os.unlink(entry.path)
        except OSError:
            pass


def _may_write(path: str, st: os.stat_result) -> bool:
    if os.geteuid() == 0:  # root may write anything: respect the mode's word instead
        return bool(st.st_mode & 0o222)
    return os.access(path, os.W_OK, effective_ids=os.access in os.supports_effective_ids)


def _target(path: str, follow_symlinks: bool) -> tuple[str, os.stat_result | None]:
    """The path to write (a link's target when following) and its status (None: a new file); refusals."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path, None
    except OSError as e:
        raise WriteError(path, f"cannot write: {e.strerror or e}; not written", e.errno or 0) from e
    if stat.S_ISLNK(st.st_mode):
        if not follow_symlinks:
            raise WriteError(path, f"is a symbolic link (to {os.readlink(path)}); not written through it "
                                   "(--follow-symlinks writes to its target)")
        real = os.path.realpath(path)
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            return real, None
        except OSError as e:
            raise WriteError(path, f"cannot write its target {real}: {e.strerror or e}; not written", e.errno or 0) from e
        path = real
    if not stat.S_ISREG(st.st_mode):
        raise WriteError(path, f"not a regular file ({file_kind(st.st_mode)}); not written")
    if not _may_write(path, st):
        raise WriteError(path, f"is read-only for you (mode {stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid}); "
                               "not modified", errno.EACCES)
    return path, st


def _replaceable(path: str, st: os.stat_result) -> bool:
    """Whether a rename can replace the file without anyone noticing (same links, owner, group, attributes)."""
    if st.st_nlink != 1 or st.st_uid != os.geteuid():
        return False
    if st.st_gid != os.getegid() and st.st_gid not in os.getgroups() and os.geteuid() != 0:
        return False
    try:
        return not os.listxattr(path, follow_symlinks=False)
    except OSError:  # no extended attributes on this file system
        return True


def _check_digest(path: str, data: bytes, expected_digest: str | None) -> None:
    if expected_digest is not None and digest(data) != expected_digest:
        raise StaleFileError(f"{path}: changed on disk since it was read; not overwritten")


def _read_all(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _new_temp(directory: str, name: str, payload: bytes, journal: bool) -> tuple[int, str]:
    """A temporary file beside the target holding ``payload`` (flushed); its descriptor stays open."""
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=_temp_prefix(name, journal), suffix=".tmp")
    except OSError as e:
        raise WriteError(os.path.join(directory, name), f"cannot create a temporary file in {directory}: "
                         f"{e.strerror or e}; the file is unchanged", e.errno or 0) from e
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(tmp)
        raise
    return fd, tmp


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_by_rename(path: str, payload: bytes, expected_digest: str | None, st: os.stat_result | None) -> None:
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = _new_temp(directory, name, payload, journal=False)
    try:
        if st is None:  # a new file gets the permissions any new file would (mkstemp makes 0600)
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        else:
            if st.st_gid != os.fstat(fd).st_gid:
                os.fchown(fd, -1, st.st_gid)
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
        os.close(fd)
        fd = -1
        if expected_digest is not None:  # last look right before the rename
            _check_digest(path, _read_all(path), expected_digest)
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _unlink(tmp)
        raise
    _fsync_directory(directory)


def _pwrite_all(fd: int, data: bytes) -> None:
    view, offset = memoryview(data), 0
    while offset < len(data):
        offset += os.pwrite(fd, view[offset:], offset)


def _write_in_place(path: str, payload: bytes, expected_digest: str | None, st: os.stat_result) -> None:
    directory, name = os.path.split(os.path.abspath(path))
    tfd, journal = _new_temp(directory, name, payload, journal=True)
    os.close(tfd)
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        _unlink(journal)
        raise
    keep_journal = False
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
            raise StaleFileError(f"{path}: replaced on disk since it was read; not overwritten")
        old = b""
        while chunk := os.pread(fd, 1 << 20, len(old)):
            old += chunk
        _check_digest(path, old, expected_digest)  # last look right before the first byte changes
        if len(payload) > len(old):
            try:  # reserve the space first: a full disk fails here, with the file untouched
                os.posix_fallocate(fd, 0, len(payload))
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    os.ftruncate(fd, len(old))
                    raise
        try:
            _pwrite_all(fd, payload)
            os.ftruncate(fd, len(payload))
            os.fsync(fd)
        except OSError as e:
            try:  # put the old text back
                _pwrite_all(fd, old)
                os.ftruncate(fd, len(old))
                os.fsync(fd)
            except OSError:
                keep_journal = True
                raise WriteError(path, f"cannot write: {e.strerror or e}; the file may be damaged: its new "
                                       f"text is in {journal}", e.errno or 0) from e
            raise
    finally:
        os.close(fd)
        if not keep_journal:
            _unlink(journal)


def atomic_write(path: str, text: str, expected_digest: str | None = None, stale_after_s: float = 600,
                 *, follow_symlinks: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` safely; refuse if its content is no longer ``expected_digest``.

    See the module's docstring for how. Raises :class:`WriteError` (refused, or the system
    failed; the file is unchanged) or :class:`StaleFileError`.
    """
    target, st = _target(path, follow_symlinks)
    if st is None and expected_digest is not None:
        raise StaleFileError(f"{path}: deleted since it was read; not written")
    payload = text.encode("utf-8")
    directory, name = os.path.split(os.path.abspath(target))
    _remove_stale_temporaries(directory, name, stale_after_s)
    try:
        if st is None or _replaceable(target, st):
            _write_by_rename(target, payload, expected_digest, st)
        else:
            _write_in_place(target, payload, expected_digest, st)
    except (StaleFileError, WriteError):
        raise
    except OSError as e:
        raise WriteError(path, f"cannot write: {e.strerror or e}; the file is unchanged", e.errno or 0) from e

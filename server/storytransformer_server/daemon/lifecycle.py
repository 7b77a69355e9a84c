"""Where the daemon lives on disk and how a second one finds the first.

* runtime directory: ``$STORYTRANSFORMER_RUNTIME_DIR``, else
  ``$XDG_RUNTIME_DIR/storytransformer``, else ``<tmp>/storytransformer-<uid>``.
  It must be a directory owned by this user with no group/other access
  (created 0700); anything else is refused, so another user can neither
  read the socket nor plant one.
* ``daemon.lock``: an ``flock`` held for the daemon's life. The kernel drops
  it when the process dies (even by ``kill -9``), so a lock file left behind
  is never mistaken for a running daemon.
* ``daemon.sock``: the Unix socket (0600). A socket file whose lock is free
  is stale and removed before binding.
* ``daemon.json``: pid, start time and endpoints of the running daemon.
* logs: a rotating file in the user state directory.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import logging.handlers
import os
import socket
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

RUNTIME_ENV = "STORYTRANSFORMER_RUNTIME_DIR"
LOG_ENV = "STORYTRANSFORMER_LOG_DIR"
SOCKET_NAME = "daemon.sock"
LOCK_NAME = "daemon.lock"
INFO_NAME = "daemon.json"
TOKEN_NAME = "tcp-token"
# sun_path is 108 bytes on Linux, 104 on macOS, including the terminating NUL.
MAX_SOCKET_PATH = 103


class RuntimeDirError(RuntimeError):
    """The runtime directory is missing, unsafe or unusable; the message says how to fix it."""


def runtime_dir(override: str | os.PathLike | None = None) -> Path:
    """The directory that holds the socket, lock and info file (not created here)."""
    if override:
        return Path(override)
    env = os.environ.get(RUNTIME_ENV)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / "storytransformer"
    return Path(tempfile.gettempdir()) / f"storytransformer-{os.getuid()}"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` 0700 if missing; refuse one that another user owns or others may write."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise RuntimeDirError(f"cannot create runtime directory {path}: {e.strerror or e}") from None
    check_private_dir(path)
    return path


def check_private_dir(path: Path) -> None:
    try:
        st = os.lstat(path)
    except OSError as e:
        raise RuntimeDirError(f"runtime directory {path}: {e.strerror or e}") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise RuntimeDirError(f"runtime directory {path} is not a plain directory (a symlink or a file?); remove it")
    if st.st_uid != os.getuid():
        raise RuntimeDirError(f"runtime directory {path} is owned by uid {st.st_uid}, not by you (uid {os.getuid()}); "
                              f"refusing to use it. Set {RUNTIME_ENV} to a private directory")
    if st.st_mode & 0o077:
        raise RuntimeDirError(f"runtime directory {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must not be "
                              f"accessible to group or others (fix with: chmod 700 {path})")


@dataclass(frozen=True)
class Paths:
    dir: Path

    @property
    def socket(self) -> Path:
        return self.dir / SOCKET_NAME

    @property
    def lock(self) -> Path:
        return self.dir / LOCK_NAME

    @property
    def info(self) -> Path:
        return self.dir / INFO_NAME

    @property
    def token(self) -> Path:
        return self.dir / TOKEN_NAME

    @classmethod
    def resolve(cls, override: str | os.PathLike | None = None) -> "Paths":
        p = cls(runtime_dir(override))
        if len(os.fsencode(p.socket)) > MAX_SOCKET_PATH:
            raise RuntimeDirError(f"socket path {p.socket} is longer than {MAX_SOCKET_PATH} bytes, which Unix sockets "
                                  f"do not allow; set {RUNTIME_ENV} to a shorter directory")
        return p


class InstanceLock:
    """The one-daemon-per-runtime-directory lock (``flock``; released by the kernel on death)."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None

    def is_held_elsewhere(self) -> bool:
        """True when some live process holds the lock (probe without keeping it)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False


def socket_answers(path: Path, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on the Unix socket at ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(os.fspath(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def remove_stale_socket(path: Path) -> bool:
    """Remove a socket file left by a dead daemon. Call only while holding the instance lock."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        raise RuntimeDirError(f"{path} exists and is not a socket; remove it by hand")
    os.unlink(path)
    return True


def write_info(paths: Paths, info: dict) -> None:
    """Atomically write the running daemon's description (read by ``daemon status`` without a connection)."""
    tmp = paths.info.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(info, f)
    os.replace(tmp, paths.info)


def read_info(paths: Paths) -> dict | None:
    try:
        return json.loads(paths.info.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def read_or_create_token(path: Path) -> str:
    """The TCP token: read from a 0600 file, created with a random value when missing."""
    import secrets
    import stat as stat_

    parent = path.parent
    try:
        pst = os.stat(parent)
    except FileNotFoundError:
        raise RuntimeDirError(f"the directory of the token file {path} does not exist") from None
    if pst.st_mode & (stat_.S_IWGRP | stat_.S_IWOTH) and not pst.st_mode & stat_.S_ISVTX:
        # anyone who can write there can swap the token for their own: refuse, as for the runtime directory
        raise RuntimeDirError(f"the directory of the token file {path} is writable by group or others "
                              f"(mode {stat_.S_IMODE(pst.st_mode):04o}); fix with: chmod go-w {parent}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token
    if stat_.S_ISLNK(st.st_mode):
        raise RuntimeDirError(f"token file {path} is a symbolic link; use a regular file (mode 0600)")
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise RuntimeDirError(f"token file {path} must be owned by you and mode 0600 (fix with: chmod 600 {path})")
    token = path.read_text("utf-8").strip()
    if not token:
        raise RuntimeDirError(f"token file {path} is empty")
    return token


def log_dir() -> Path:
    env = os.environ.get(LOG_ENV)
    if env:
        return Path(env)
    from platformdirs import user_state_dir

    return Path(user_state_dir("storytransformer"))


def setup_logging(level: str = "INFO", to_stderr: bool = False) -> Path:
    """Log to ``<state dir>/daemon.log`` (rotating, 5 x 2 MB), and to stderr when in the foreground."""
    d = log_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = d / "daemon.log"
    root = logging.getLogger("storytransformer_server.daemon")
    root.setLevel(level.upper())
    root.propagate = False
    for h in list(root.handlers):
        root.removeHandler(h)
    fmt = logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    fh = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
    fh.setFormatter(fmt)
    root.addHandler(fh)
    if to_stderr:
        sh = logging.StreamHandler()
        sh.setFormatter(fmt)
        root.addHandler(sh)
    return path


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

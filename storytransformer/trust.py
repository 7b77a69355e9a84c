"""Which configuration files may be used, and which of their settings need the user's consent.

Two rules (docs/configuration.md, "Where settings may come from"):

* A configuration file found by searching upwards is used only when it cannot have been
  written by someone else: the file and its directory are owned by the current user or by
  root, and neither is writable by group or others (a group that is the user's own private
  group does not count). Anything else is ignored with a notice naming the file and the reason.
* Settings that send stories and a secret over the network (``engine.remote_url``,
  ``engine.remote_api_key_env``) are used from a project file only after the user trusted
  that file with those exact values. The consent is stored in the user configuration
  directory (``trusted.json``), keyed by the file's absolute path and a hash of the values,
  so a changed URL or variable asks again. Until then the values are dropped: the secret is
  never read and the URL never contacted.

The process decides what happens with untrusted remote settings (:func:`set_policy`): the
library, the language server and the daemon drop them (with a notice); the CLI commands
that run the model ask on a terminal and otherwise stop with exit code 2 and the command
that trusts the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

try:  # POSIX; elsewhere only the owner check applies
    import grp
    import pwd
except ImportError:  # pragma: no cover
    grp = pwd = None  # type: ignore[assignment]

log = logging.getLogger("storytransformer.config")

CONFIG_DIR_ENV = "STORYTRANSFORMER_CONFIG_DIR"  # another user configuration directory (tests, CI)
TRUST_ENV = "STORYTRANSFORMER_TRUST_CONFIG"  # project config files trusted for this run (os.pathsep-separated)
USER_CONFIG = "config.toml"
TRUST_FILE = "trusted.json"
REMOTE_KEYS = ("remote_url", "remote_api_key_env")


class UntrustedConfig(ValueError):
    """Raised (as a ConfigError subclass by config.py's callers) when the CLI refuses a project's remote settings."""


# -- the process policy -----------------------------------------------------------------------


@dataclass
class Policy:
    remote: str = "drop"  # drop (with a notice) | quiet (drop silently) | confirm (ask on a terminal, else refuse)
    walk: str = "cli"  # cli: up to the repository root or home; workspace: never above the start directory
    notice: Callable[[str], None] | None = None  # where notices go (default: the log)


POLICY = Policy()
_noticed: set[str] = set()


def set_policy(remote: str | None = None, walk: str | None = None, notice: Callable[[str], None] | None = None) -> None:
    if remote is not None:
        assert remote in ("drop", "quiet", "confirm")
        POLICY.remote = remote
    if walk is not None:
        assert walk in ("cli", "workspace")
        POLICY.walk = walk
    if notice is not None:
        POLICY.notice = notice


def notice(message: str) -> None:
    """Tell the user once per process (the CLI prints it; the servers log it and show it)."""
    if message in _noticed:
        return
    _noticed.add(message)
    if POLICY.notice is not None:
        POLICY.notice(message)
    else:
        log.warning("%s", message)


# -- the user configuration directory ----------------------------------------------------------


def user_config_dir() -> Path:
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env)
    from platformdirs import user_config_dir as ucd

    return Path(ucd("storytransformer"))


def user_config_file() -> Path:
    return user_config_dir() / USER_CONFIG


def trust_file() -> Path:
    return user_config_dir() / TRUST_FILE


# -- who may have written a file ----------------------------------------------------------------


def _private_group(gid: int) -> bool:
    """The user's own group (user private groups, umask 002): group write is then the user's alone."""
    if grp is None or pwd is None or gid != os.getgid():
        return False
    try:
        group = grp.getgrgid(gid)
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return False
    return group.gr_name == user and set(group.gr_mem) <= {user}


def _who(uid: int) -> str:
    if pwd is None:
        return f"uid {uid}"
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _problem(st: os.stat_result, what: str) -> str | None:
    if not hasattr(os, "getuid"):  # pragma: no cover - Windows: no owner bits to compare
        return None
    me = os.getuid()
    if st.st_uid not in (me, 0):
        return f"{what} is owned by {_who(st.st_uid)}, not by you or root"
    if st.st_mode & stat.S_IWOTH:
        return f"{what} is writable by everyone"
    if st.st_mode & stat.S_IWGRP and not _private_group(st.st_gid):
        return f"{what} is writable by its group ({st.st_gid})"
    return None


def unsafe_reason(path: Path) -> str | None:
    """Why ``path`` may have been written by another user, or None when it cannot have been.

    Checks the file (after symbolic links) and the directory holding it; the sticky bit of
    a shared directory such as /tmp does not help: anyone may create a file there.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    reason = _problem(st, "the file")
    if reason:
        return reason
    for directory in dict.fromkeys([path.parent, Path(os.path.realpath(path)).parent]):
        try:
            dst = os.stat(directory)
        except OSError as e:
            return f"its directory cannot be read ({e.strerror})"
        reason = _problem(dst, f"its directory {directory}")
        if reason:
            return reason
    return None


# -- remote settings and their consent --------------------------------------------------------


@dataclass(frozen=True)
class RemoteOrigin:
    """Remote-engine settings that a project file sets, and what the user's own settings say."""

    config: str  # absolute path of the project file
    remote_url: str  # the values the file asks for (after the user's settings underneath)
    remote_api_key_env: str
    base_url: str  # the values without the file (user configuration or defaults)
    base_api_key_env: str
    trusted: bool = False  # decided when the file was loaded

    @property
    def digest(self) -> str:
        blob = json.dumps([self.config, self.remote_url, self.remote_api_key_env], separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def describe(self) -> str:
        lines = [f"  engine.remote_url = {self.remote_url!r}"]
        if self.remote_api_key_env:
            lines.append(f"  engine.remote_api_key_env = {self.remote_api_key_env!r} "
                         "(the value of this environment variable is sent as the API key)")
        return "\n".join(lines)

    def how_to_trust(self) -> str:
        return f"storytransformer config trust {_quote(self.config)}"


def _quote(path: str) -> str:
    import shlex

    return shlex.quote(path)


def _load_store() -> dict:
    path = trust_file()
    if not path.exists():
        return {}
    reason = unsafe_reason(path)
    if reason:
        notice(f"{path} ignored: {reason}; no project file is trusted")
        return {}
    try:
        raw = path.read_bytes()
        if len(raw) > 4_000_000:
            raise ValueError("larger than 4 MB")
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("trusted"), dict):
            raise ValueError("not a trust list")
        return data["trusted"]
    except (OSError, ValueError, RecursionError) as e:
        notice(f"{path} ignored: {e}; no project file is trusted")
        return {}


def _save_store(entries: dict) -> Path:
    path = trust_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps({"version": 1, "trusted": entries}, indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".trusted-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def is_trusted(origin: RemoteOrigin) -> bool:
    env = os.environ.get(TRUST_ENV, "")
    if env and any(p and os.path.realpath(p) == origin.config for p in env.split(os.pathsep)):
        return True
    entry = _load_store().get(origin.config)
    return isinstance(entry, dict) and entry.get("digest") == origin.digest


def add(origin: RemoteOrigin) -> Path:
    """Record the user's consent to ``origin``'s values (replacing an older consent for the file)."""
    entries = _load_store()
    entries[origin.config] = {"digest": origin.digest, "remote_url": origin.remote_url,
                              "remote_api_key_env": origin.remote_api_key_env,
                              "trusted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return _save_store(entries)


def remove(config_path: str) -> bool:
    entries = _load_store()
    if entries.pop(config_path, None) is None:
        return False
    _save_store(entries)
    return True


def trusted_entries() -> dict:
    return dict(_load_store())


def resolve(origin: RemoteOrigin) -> bool:
    """Whether ``origin``'s remote settings are used now (asking or refusing under the CLI's policy)."""
    if is_trusted(origin):
        return True
    if POLICY.remote == "confirm":
        if _interactive():
            return _ask(origin)
        raise UntrustedConfig(
            f"{origin.config}: not trusted to choose the remote model server:\n{origin.describe()}\n"
            f"Check these settings, then run `{origin.how_to_trust()}` (or set {TRUST_ENV} to the file's path "
            "for one run); remove them from the file to use the local model")
    if POLICY.remote == "quiet":
        return False
    notice(f"{origin.config}: engine.remote_url / engine.remote_api_key_env ignored until you trust the file "
           f"(`{origin.how_to_trust()}`):\n{origin.describe()}")
    return False


def _interactive() -> bool:
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _ask(origin: RemoteOrigin) -> bool:
    err = sys.stderr
    print(f"storytransformer: {origin.config} asks to send your stories to a remote model server:\n"
          f"{origin.describe()}", file=err)
    print("Trust these settings of this file (remembered until they change)? [y/N] ", end="", file=err, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer in ("y", "yes"):
        where = add(origin)
        print(f"storytransformer: trusted (recorded in {where})", file=err)
        return True
    raise UntrustedConfig(f"{origin.config}: remote model settings not trusted; nothing was sent. "
                          f"Trust them later with `{origin.how_to_trust()}`")


def effective(config):
    """``config`` with its remote-engine settings as the trust list says now.

    The daemon keeps a project's configuration for hours: a file trusted (or no longer
    trusted) since it was loaded takes effect at the next model request.
    """
    origin = getattr(config, "remote_origin", None)
    if origin is None:
        return config
    from dataclasses import replace

    now = is_trusted(origin)
    url, env = (origin.remote_url, origin.remote_api_key_env) if now else (origin.base_url, origin.base_api_key_env)
    if config.engine.remote_url == url and config.engine.remote_api_key_env == env:
        return config
    return replace(config, engine=replace(config.engine, remote_url=url, remote_api_key_env=env),
                   remote_origin=replace(origin, trusted=now))

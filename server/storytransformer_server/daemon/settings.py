"""Daemon settings: per user, not per project (one daemon serves every workspace).

Read from ``<user config dir>/storytransformer/daemon.toml`` when it exists
(``$STORYTRANSFORMER_DAEMON_CONFIG`` names another file), then overridden by
command-line flags (which is how a language server that starts the daemon passes the
editor's idle settings). Every key is checked by the core's settings converter
(:mod:`storytransformer.typed_settings`); a typo is an error naming the file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from storytransformer import typed_settings as _settings
from storytransformer.typed_settings import setting

from .protocol import DEFAULT_HANDSHAKE_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE_BYTES

CONFIG_ENV = "STORYTRANSFORMER_DAEMON_CONFIG"
MAX_SETTINGS_BYTES = 1_000_000
DAYS_30 = 30 * 86_400


class SettingsError(ValueError):
    """A bad daemon setting; the message names the file and the key."""


@dataclass
class DaemonSettings:
    # Finite and bounded: nan, inf or 1e300 never reach a timer or a buffer.
    idle_unload_s: float = setting(15 * 60.0, low=0, high=DAYS_30)  # unload the model after this long unused (0 = never)
    idle_exit_s: float = setting(60 * 60.0, low=0, high=DAYS_30)  # exit after this long with no client connected (0 = never)
    max_message_bytes: int = setting(DEFAULT_MAX_MESSAGE_BYTES, low=1024, high=1 << 30)
    # The longest any request may run when the client names no deadline.
    request_deadline_s: float = setting(120.0, above=0, high=86_400)
    debounce_s: float = setting(0.1, low=0, high=60)  # quiet time that ends a burst of file events
    max_batch_delay_s: float = setting(0.5, low=0, high=600)  # a burst is processed at most this long after its first event
    tcp_port: int = setting(0, low=0, high=65535)  # 0 = no TCP listener; otherwise 127.0.0.1 only, with a token
    token_file: str = ""  # "" = <runtime dir>/tcp-token (created 0600)
    log_level: str = setting("INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    # Per listener; more are answered an error and closed.
    max_connections: int = setting(DEFAULT_MAX_CONNECTIONS, low=1, high=10_000)
    # A connection silent this long without a handshake is closed.
    handshake_timeout_s: float = setting(DEFAULT_HANDSHAKE_TIMEOUT_S, above=0, high=3_600)

    def validate(self, source: str = "<settings>") -> "DaemonSettings":
        """Check every value against its declared limits (also after flags overrode the file)."""
        if isinstance(self.log_level, str):
            self.log_level = self.log_level.upper()
        _settings.structure(DaemonSettings, {f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
                            source=source, error=SettingsError)
        return self


def settings_file() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("storytransformer")) / "daemon.toml"


def _read(path: Path) -> dict:
    """The file's table; any failure (size, encoding, syntax, deep nesting) is a SettingsError naming it."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SETTINGS_BYTES + 1)
        if len(raw) > MAX_SETTINGS_BYTES:
            raise ValueError(f"larger than {MAX_SETTINGS_BYTES:,} bytes")
        return tomllib.loads(raw.decode("utf-8"))
    except RecursionError:
        raise SettingsError(f"{path}: cannot read daemon settings: arrays or tables nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - OSError, UnicodeDecodeError, TOMLDecodeError, MemoryError, ...
        raise SettingsError(f"{path}: cannot read daemon settings: {e}") from None


def load_settings(path: Path | None = None, **overrides) -> DaemonSettings:
    """Settings from ``path`` (default: :func:`settings_file`, if it exists) plus non-None ``overrides``."""
    path = path or settings_file()
    table = _read(path) if path.is_file() else {}
    for key in ("log_level", "log-level"):
        if isinstance(table.get(key), str):
            table[key] = table[key].upper()  # "debug" is as clear as "DEBUG"
    settings = _settings.structure(DaemonSettings, table, source=str(path), error=SettingsError)
    changed = {k: v for k, v in overrides.items() if v is not None}
    if not changed:
        return settings
    return dataclasses.replace(settings, **changed).validate(f"{path} with the command-line flags")

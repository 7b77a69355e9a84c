"""Daemon settings: per user, not per project (one daemon serves every workspace).

Read from ``<user config dir>/storytransformer/daemon.toml`` when it exists
(``$STORYTRANSFORMER_DAEMON_CONFIG`` names another file), then overridden by
command-line flags. Every key is checked; a typo is an error naming the file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

from .protocol import DEFAULT_HANDSHAKE_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE_BYTES

CONFIG_ENV = "STORYTRANSFORMER_DAEMON_CONFIG"


MAX_SETTINGS_BYTES = 1_000_000
UPPER = {  # upper bounds of the numeric settings (lower bounds: validate)
    "idle_unload_s": 30 * 86_400, "idle_exit_s": 30 * 86_400, "request_deadline_s": 86_400,
    "debounce_s": 60, "max_batch_delay_s": 600, "max_message_bytes": 1 << 30,
    "max_connections": 10_000, "handshake_timeout_s": 3_600,
}


class SettingsError(ValueError):
    """A bad daemon setting; the message names the file and the key."""


@dataclass
class DaemonSettings:
    idle_unload_s: float = 15 * 60  # unload the model after this long unused (0 = never)
    idle_exit_s: float = 60 * 60  # exit after this long with no client connected (0 = never)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    request_deadline_s: float = 120.0  # the longest any request may run when the client names no deadline
    debounce_s: float = 0.1  # quiet time that ends a burst of file events
    max_batch_delay_s: float = 0.5  # a burst is processed at most this long after its first event
    tcp_port: int = 0  # 0 = no TCP listener; otherwise 127.0.0.1 only, with a token
    token_file: str = ""  # "" = <runtime dir>/tcp-token (created 0600)
    log_level: str = "INFO"
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # per listener; more are answered an error and closed
    handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S  # a connection silent this long without a handshake is closed

    def validate(self, source: str = "<settings>") -> "DaemonSettings":
        for name, high in UPPER.items():  # finite and bounded: nan, inf or 1e300 never reach a timer or a buffer
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value) or value > high:
                raise SettingsError(f"{source}: '{name}' must be a finite number of at most {high:,}, not {value!r}")
        if self.max_connections < 1 or self.handshake_timeout_s <= 0:
            raise SettingsError(f"{source}: 'max_connections' must be >= 1 and 'handshake_timeout_s' > 0")
        for name in ("idle_unload_s", "idle_exit_s", "debounce_s", "max_batch_delay_s"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{source}: '{name}' must be >= 0")
        if self.request_deadline_s <= 0:
            raise SettingsError(f"{source}: 'request_deadline_s' must be > 0")
        if self.max_message_bytes < 1024:
            raise SettingsError(f"{source}: 'max_message_bytes' must be at least 1024")
        if not 0 <= self.tcp_port <= 65535:
            raise SettingsError(f"{source}: 'tcp_port' must be between 0 and 65535")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"{source}: 'log_level' must be DEBUG, INFO, WARNING or ERROR")
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
    values: dict = {}
    if path.is_file():
        table = _read(path)
        types = typing.get_type_hints(DaemonSettings)
        fields = {f.name for f in dataclasses.fields(DaemonSettings)}
        for key, value in table.items():
            name = key.replace("-", "_")
            if name not in fields:
                raise SettingsError(f"{path}: unknown key '{key}' (known: {', '.join(sorted(fields))})")
            want = types[name]
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, want) or isinstance(value, bool) != (want is bool):
                raise SettingsError(f"{path}: '{key}' must be {want.__name__}, not {type(value).__name__} ({value!r})")
            values[name] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    return DaemonSettings(**values).validate(str(path))

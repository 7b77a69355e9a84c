"""Daemon settings: per user, not per project (one daemon serves every workspace).

Read from ``<user config dir>/storytransformer/daemon.toml`` when it exists
(``$STORYTRANSFORMER_DAEMON_CONFIG`` names another file), then overridden by
command-line flags. Every key is checked; a typo is an error naming the file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

from .protocol import DEFAULT_HANDSHAKE_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE_BYTES

CONFIG_ENV = "STORYTRANSFORMER_DAEMON_CONFIG"


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


def load_settings(path: Path | None = None, **overrides) -> DaemonSettings:
    """Settings from ``path`` (default: :func:`settings_file`, if it exists) plus non-None ``overrides``."""
    path = path or settings_file()
    values: dict = {}
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as e:
            raise SettingsError(f"{path}: cannot read daemon settings: {e}") from None
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

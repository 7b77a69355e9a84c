"""Settings of the size/cost estimate: ``[tool.storytransformer.estimate]``.

The typed settings (:class:`EstimateSettings`, :class:`HostedModel`) are part of the core
configuration (:mod:`storytransformer.config`), read and checked with every other key; this module
is what the ``report`` and ``estimate`` commands start with. Prices are USD per million tokens.
"""

from __future__ import annotations

from pathlib import Path

from .. import typed_settings as _settings
from ..config import DEFAULT_HOSTED, MAX_HOSTED, Config, ConfigError, EstimateSettings, HostedModel, load_config

__all__ = ["DEFAULT_HOSTED", "MAX_HOSTED", "EstimateSettings", "HostedModel", "from_section", "load", "load_for_command"]
SECTION = "estimate"


def from_section(table: dict, source: str) -> EstimateSettings:
    """Settings from an ``estimate`` table alone; unknown keys and wrong types name the key and ``source``."""
    return _settings.structure(EstimateSettings, table, source=source, prefix=f"tool.storytransformer.{SECTION}",
                               error=ConfigError)


def load(config_path: Path | None, start: Path) -> tuple[Config, EstimateSettings]:
    """The core configuration and the estimate settings from one file (or the defaults)."""
    config = load_config(config_path, start=start)
    return config, config.estimate


def load_for_command(command: str, config_path: Path | None, paths: list[str], err) -> tuple[Config, EstimateSettings] | None:
    """What `report` and `estimate` start with: the settings for ``paths`` and the paths checked.

    Prints a clear error naming the file or setting and returns None (exit code 2) when one is wrong.
    """
    try:
        start = Path(paths[0]) if paths else Path(".")
        loaded = load(config_path, start if start.exists() else Path("."))
    except ConfigError as e:
        print(f"storytransformer {command}: error: {e}", file=err)
        return None
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        print(f"storytransformer {command}: error: {missing[0]}: no such file or directory", file=err)
        return None
    return loaded

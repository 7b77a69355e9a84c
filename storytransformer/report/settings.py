"""Settings of the size/cost estimate: ``[tool.storytransformer.estimate]``.

The core loader keeps this table as it is and calls :func:`from_section` to check it;
:func:`load` turns it into :class:`EstimateSettings`. Prices are USD per million tokens;
every figure can be overridden in the file, within :data:`BOUNDS` (finite numbers only).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, ConfigError, load_config

SECTION = "estimate"
# Inclusive bounds; a value outside them (or nan, or infinity) names the key and stops the run (exit 2).
BOUNDS = {
    "prefill_tokens_per_s": (-math.inf, 1e9),  # and greater than 0 (checked below, with its own message)
    "decode_tokens_per_s": (-math.inf, 1e9),
    "output_ratio": (-math.inf, 1_000.0),  # and not negative (below)
    "prompt_overhead_tokens": (-math.inf, 10_000_000),
    "input_per_million": (0.0, 1e6),
    "output_per_million": (0.0, 1e6),
    "context_window": (1, 1_000_000_000),
}
MAX_HOSTED = 1_000


@dataclass(frozen=True)
class HostedModel:
    name: str
    input_per_million: float  # USD per million prompt tokens
    output_per_million: float  # USD per million generated tokens
    context_window: int  # tokens


# List prices (USD per million tokens) as the providers published them in late 2024;
# they change: check your provider's price page and override them in the configuration.
DEFAULT_HOSTED = (
    HostedModel("gpt-4o-mini", 0.15, 0.60, 128_000),
    HostedModel("gpt-4o", 2.50, 10.00, 128_000),
    HostedModel("claude-3-5-haiku", 0.80, 4.00, 200_000),
    HostedModel("claude-3-5-sonnet", 3.00, 15.00, 200_000),
    HostedModel("gemini-1.5-flash", 0.075, 0.30, 1_000_000),
)


@dataclass(frozen=True)
class EstimateSettings:
    """How one pass of the engine over a backlog is costed (docs/report.md explains each)."""

    # Local engine throughput, tokens per second, for the packaged SmolLM2-135M on 2 CPU cores:
    # decoding runs at 16-23 tokens/s on an idle machine; prompt processing ran 50-75 times faster
    # than decoding in benchmarks/estimate_throughput.py (docs/benchmarks/estimate_throughput.md),
    # hence 1,000. ``storytransformer estimate --measure`` measures this machine instead.
    prefill_tokens_per_s: float = 1000.0
    decode_tokens_per_s: float = 20.0
    # Generated tokens per story token: a rewrite is about as long as the story it rewrites.
    output_ratio: float = 1.0
    # Prompt tokens added to every story (system message, examples); 0 = count the engine's
    # own rewrite prompt with the tokenizer.
    prompt_overhead_tokens: int = 0
    hosted: tuple[HostedModel, ...] = DEFAULT_HOSTED


def from_section(table: dict, source: str) -> EstimateSettings:
    """Settings from the ``estimate`` table; unknown keys and wrong types name the key."""
    prefix = f"tool.storytransformer.{SECTION}"
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: '{prefix}' must be a table")
    known = {f.name for f in dataclasses.fields(EstimateSettings)}
    kwargs = {}
    for key, value in table.items():
        norm = key.replace("-", "_")
        if norm not in known:
            raise ConfigError(f"{source}: unknown key '{prefix}.{key}' (known: {', '.join(sorted(known))})")
        if norm == "hosted":
            items = _list(value, f"{prefix}.hosted", source)
            if len(items) > MAX_HOSTED:
                raise ConfigError(f"{source}: '{prefix}.hosted' may list at most {MAX_HOSTED:,} models, not {len(items):,}")
            kwargs[norm] = tuple(_hosted(v, f"{prefix}.hosted[{i}]", source) for i, v in enumerate(items))
        elif norm == "prompt_overhead_tokens":
            kwargs[norm] = int(_number(value, f"{prefix}.{key}", source, integer=True, bounds=BOUNDS[norm]))
        else:
            kwargs[norm] = float(_number(value, f"{prefix}.{key}", source, bounds=BOUNDS[norm]))
    settings = EstimateSettings(**kwargs)
    for name in ("prefill_tokens_per_s", "decode_tokens_per_s"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{source}: '{prefix}.{name}' must be greater than 0")
    if settings.output_ratio < 0 or settings.prompt_overhead_tokens < 0:
        raise ConfigError(f"{source}: '{prefix}' output_ratio and prompt_overhead_tokens must not be negative")
    return settings


def _list(value, key: str, source: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(f"{source}: '{key}' must be an array of tables ([[{key}]])")
    return value


def _number(value, key: str, source: str, integer: bool = False, bounds: tuple | None = None):
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise ConfigError(f"{source}: '{key}' must be {'an integer' if integer else 'a number'}, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: '{key}' must be a finite number, not {value!r}")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        span = f"at most {_num(bounds[1])}" if bounds[0] == -math.inf else f"from {_num(bounds[0])} to {_num(bounds[1])}"
        raise ConfigError(f"{source}: '{key}' must be {span}, not {value!r}")
    return value


def _num(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def _hosted(value, key: str, source: str) -> HostedModel:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' must be a table")
    need = {f.name for f in dataclasses.fields(HostedModel)}
    unknown = set(value) - need
    if unknown:
        raise ConfigError(f"{source}: unknown key '{key}.{sorted(unknown)[0]}' (known: {', '.join(sorted(need))})")
    missing = need - set(value)
    if missing:
        raise ConfigError(f"{source}: '{key}' needs {', '.join(sorted(missing))}")
    if not isinstance(value["name"], str) or not value["name"]:
        raise ConfigError(f"{source}: '{key}.name' must be a non-empty string")
    m = HostedModel(value["name"], float(_number(value["input_per_million"], f"{key}.input_per_million", source,
                                                 bounds=BOUNDS["input_per_million"])),
                    float(_number(value["output_per_million"], f"{key}.output_per_million", source,
                                  bounds=BOUNDS["output_per_million"])),
                    int(_number(value["context_window"], f"{key}.context_window", source, integer=True,
                                bounds=BOUNDS["context_window"])))
    if m.input_per_million < 0 or m.output_per_million < 0 or m.context_window < 1:
        raise ConfigError(f"{source}: '{key}' prices must not be negative and context_window must be at least 1")
    return m


def load(config_path: Path | None, start: Path) -> tuple[Config, EstimateSettings]:
    """The core configuration and the estimate settings from one file (or the defaults)."""
    config = load_config(config_path, start=start)
    settings = from_section(config.estimate, config.source) if config.estimate else EstimateSettings()
    return config, settings


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

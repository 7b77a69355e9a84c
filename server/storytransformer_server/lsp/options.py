"""Settings the client sends (``initializationOptions`` and the ``storytransformer`` section).

Invalid values never stop the server: each is replaced by its default and
reported in the returned error list, which the caller shows to the user
(the jedi-language-server way). Unknown keys are ignored, because editors send
their own keys in the same section (paths, trace level).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from storytransformer.checking import ON_SAVE, FixPolicy

SEVERITIES = ("error", "warning", "info", "hint", "off")


@dataclass(frozen=True)
class FixOnSave:
    # Include model rewrites in source.fixAll (only those already computed for the current version).
    model: bool = False
    # The kinds of deterministic fix applied on save (the core's fix policy): safe | unsafe | deletion.
    policy: FixPolicy = ON_SAVE


@dataclass(frozen=True)
class DaemonOptions:
    enabled: bool = True  # False: no model features at all, deterministic only
    spawn: bool = True  # start the daemon on demand when model work is asked for
    timeout_s: float = 30.0  # deadline of one model request


@dataclass(frozen=True)
class EngineOverrides:
    """Engine settings from the editor, on top of the project's [tool.storytransformer.engine]; "" = keep."""

    model: str = ""
    quantization: str = ""  # none | int8 | nf4
    device: str = ""  # auto | cpu | cuda | cuda:N | mps
    remote_url: str = ""

    def to_engine_config(self) -> dict[str, str]:
        """The keys of the core's EngineConfig that the editor sets."""
        return {k: v for k, v in (("model", self.model), ("quantization", self.quantization),
                                  ("device", self.device), ("remote_url", self.remote_url)) if v}


QUANTIZATIONS = ("none", "int8", "nf4")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class ServerOptions:
    debounce_ms: int = 150
    rules: dict[str, str] = field(default_factory=dict)  # code -> severity | "off"
    fix_on_save: FixOnSave = field(default_factory=FixOnSave)
    daemon: DaemonOptions = field(default_factory=DaemonOptions)
    engine: EngineOverrides = field(default_factory=EngineOverrides)
    semantic: bool = True  # semantic duplicates and overlaps (ST603-ST605) from the daemon
    max_stories: int = 2000  # an open document is checked up to its first max_stories stories ...
    max_bytes: int = 1_000_000  # ... and its first max_bytes bytes; a notice says what was left out


def _bool(value: Any, key: str, default: bool, errors: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    errors.append(f"storytransformer.{key} must be true or false, not {value!r}; using {str(default).lower()}")
    return default


def _number(value: Any, key: str, default, low: float, high: float, errors: list[str], integer: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
    if ok and integer and isinstance(value, float) and not value.is_integer():
        ok = False
    if not ok:
        kind = "an integer" if integer else "a number"
        errors.append(f"storytransformer.{key} must be {kind} from {low:g} to {high:g}, not {value!r}; using {default}")
        return default
    return int(value) if integer else float(value)


def _policy(value: Any, key: str, errors: list[str]) -> FixPolicy:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        try:
            return FixPolicy.parse(value, f"storytransformer.{key}")
        except ValueError as e:
            errors.append(f"{e}; using {list(ON_SAVE.describe().split(', '))}")
            return ON_SAVE
    errors.append(f"storytransformer.{key} must be a list of safe, unsafe, deletion, not {value!r}; "
                  f"using {list(ON_SAVE.describe().split(', '))}")
    return ON_SAVE


def _table(value: Any, key: str, errors: list[str]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(f"storytransformer.{key} must be an object, not {value!r}; using the defaults")
        return {}
    return value


def parse_options(raw: Any, known_rules: set[str] | None = None) -> tuple[ServerOptions, list[str]]:
    """``raw`` (a JSON object from the client) -> options and the list of problems found."""
    errors: list[str] = []
    d = ServerOptions()
    if raw is None:
        return d, errors
    if not isinstance(raw, dict):
        return d, [f"storytransformer settings must be an object, not {raw!r}; using the defaults"]

    debounce = d.debounce_ms
    if "debounceMs" in raw:
        debounce = _number(raw["debounceMs"], "debounceMs", d.debounce_ms, 0, 10_000, errors, integer=True)

    rules: dict[str, str] = {}
    for code, sev in _table(raw.get("rules"), "rules", errors).items():
        norm = str(code).upper()
        if known_rules is not None and norm not in known_rules:
            errors.append(f"storytransformer.rules names unknown rule {code!r}; ignored")
        elif not isinstance(sev, str) or sev.lower() not in SEVERITIES:
            errors.append(f"storytransformer.rules.{code} must be one of {', '.join(SEVERITIES)}, not {sev!r}; "
                          "using the rule's default")
        else:
            rules[norm] = sev.lower()

    fos = _table(raw.get("fixOnSave"), "fixOnSave", errors)
    fix_on_save = FixOnSave(model=_bool(fos["model"], "fixOnSave.model", False, errors) if "model" in fos else False,
                            policy=_policy(fos["kinds"], "fixOnSave.kinds", errors) if "kinds" in fos else ON_SAVE)

    dmn = _table(raw.get("daemon"), "daemon", errors)
    dd = DaemonOptions()
    daemon = DaemonOptions(
        enabled=_bool(dmn["enabled"], "daemon.enabled", dd.enabled, errors) if "enabled" in dmn else dd.enabled,
        spawn=_bool(dmn["spawn"], "daemon.spawn", dd.spawn, errors) if "spawn" in dmn else dd.spawn,
        timeout_s=_number(dmn["timeoutS"], "daemon.timeoutS", dd.timeout_s, 0.1, 3600, errors)
        if "timeoutS" in dmn else dd.timeout_s,
    )
    engine = EngineOverrides(
        model=_text(raw.get("model"), "model", errors),
        quantization=_choice(raw.get("quantization"), "quantization", QUANTIZATIONS, errors),
        device=_text(raw.get("device"), "device", errors, _DEVICE, "auto, cpu, mps, cuda or cuda:N"),
        remote_url=_text(raw.get("remoteUrl"), "remoteUrl", errors, re.compile(r"^https?://\S+$"),
                         "an http(s) URL such as http://127.0.0.1:8000/v1"),
    )
    semantic = _bool(raw["semantic"], "semantic", d.semantic, errors) if "semantic" in raw else d.semantic
    max_stories = _number(raw["maxStories"], "maxStories", d.max_stories, 1, 1_000_000, errors, integer=True) \
        if "maxStories" in raw else d.max_stories
    max_bytes = _number(raw["maxBytes"], "maxBytes", d.max_bytes, 1_000, 1_000_000_000, errors, integer=True) \
        if "maxBytes" in raw else d.max_bytes
    return ServerOptions(debounce, rules, fix_on_save, daemon, engine, semantic,
                         max_stories=max_stories, max_bytes=max_bytes), errors


def _text(value: Any, key: str, errors: list[str], pattern: re.Pattern | None = None, expected: str = "a string") -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
        errors.append(f"storytransformer.{key} must be {expected}, not {value!r}; using the project's setting")
        return ""
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...], errors: list[str]) -> str:
    if value is None or value == "":
        return ""
    if value not in choices:
        errors.append(f"storytransformer.{key} must be one of {', '.join(choices)}, not {value!r}; "
                      "using the project's setting")
        return ""
    return value

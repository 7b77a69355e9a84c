"""Settings the client sends (``initializationOptions`` and the ``storytransformer`` section).

The options are dataclasses read by the core's settings converter
(:func:`storytransformer.typed_settings.structure_leniently`), keyed in camelCase as VS Code
writes them. Invalid values never stop the server: each is replaced by its default and
reported in the returned error list, which the caller shows to the user (the
jedi-language-server way). Unknown keys are ignored, because editors send their own keys in
the same section (paths, trace level). Every key of vscode-extension/package.json that
configures the server is a field here (tests/lsp/test_settings_reach.py checks the table).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from storytransformer.checking import ON_SAVE, FixPolicy
from storytransformer.typed_settings import setting, structure_leniently

SEVERITIES = ("error", "warning", "info", "hint", "off")
QUANTIZATIONS = ("none", "int8", "nf4", "int4")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_URL = re.compile(r"^https?://\S+$")


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
    timeout_s: float = setting(30.0, low=0.1, high=3600)  # deadline of one model request
    # Passed to a daemon this server starts (``daemon start --idle-unload/--idle-exit``); one already
    # running keeps its own (docs/vscode.md). None: the daemon's own settings (daemon.toml, defaults).
    idle_unload_minutes: float | None = setting(None, low=0, high=30 * 24 * 60)
    idle_exit_minutes: float | None = setting(None, low=0, high=30 * 24 * 60)

    def start_flags(self) -> list[str]:
        """The command-line flags of ``storytransformer daemon start`` that carry these settings."""
        out = []
        for flag, value in (("--idle-unload", self.idle_unload_minutes), ("--idle-exit", self.idle_exit_minutes)):
            if value is not None:
                out += [flag, f"{value:g}"]
        return out


@dataclass(frozen=True)
class EngineOverrides:
    """Engine settings from the editor, on top of the project's [tool.storytransformer.engine]; "" = keep."""

    model: str = ""
    quantization: str = setting("", choices=("", *QUANTIZATIONS), expected="one of " + ", ".join(QUANTIZATIONS))
    device: str = setting("", pattern=_DEVICE, expected="auto, cpu, mps, cuda or cuda:N")
    remote_url: str = setting("", pattern=_URL, expected="an http(s) URL such as http://127.0.0.1:8000/v1")

    def to_engine_config(self) -> dict[str, str]:
        """The keys of the core's EngineConfig that the editor sets."""
        return {k: v for k, v in (("model", self.model), ("quantization", self.quantization),
                                  ("device", self.device), ("remote_url", self.remote_url)) if v}


@dataclass(frozen=True)
class ServerOptions:
    debounce_ms: int = setting(150, low=0, high=10_000)
    rules: dict[str, str] = setting(default_factory=dict, key=False)  # code -> severity | "off" (read by parse_options)
    fix_on_save: FixOnSave = field(default_factory=FixOnSave)
    daemon: DaemonOptions = field(default_factory=DaemonOptions)
    engine: EngineOverrides = setting(default_factory=EngineOverrides, key=False)  # top-level keys model, device, ...
    semantic: bool = True  # semantic duplicates and overlaps (ST603-ST605) from the daemon
    max_stories: int = setting(2000, low=1, high=1_000_000)  # an open document is checked up to its first max_stories stories ...
    max_bytes: int = setting(1_000_000, low=1_000, high=1_000_000_000)  # ... and its first max_bytes bytes; a notice says what was left out


def camel(name: str) -> str:
    """``timeout_s`` -> ``timeoutS``: the key VS Code writes for a field."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _describe(f: dataclasses.Field, tp: Any, value: Any, key: str, default: Any) -> str:
    m = f.metadata
    if tp is bool:
        return f"{key} must be true or false, not {value!r}; using {str(default).lower()}"
    if "choices" in m or "pattern" in m or tp is str:
        return f"{key} must be {m.get('expected', 'a string')}, not {value!r}; using the project's setting"
    kind = "an integer" if tp is int else "a number"
    using = "the daemon's own setting" if default is None else default
    return f"{key} must be {kind} from {m['low']:g} to {m['high']:g}, not {value!r}; using {using}"


def parse_options(raw: Any, known_rules: set[str] | None = None) -> tuple[ServerOptions, list[str]]:
    """``raw`` (a JSON object from the client) -> options and the list of problems found."""
    if raw is None:
        return ServerOptions(), []
    if not isinstance(raw, dict):
        return ServerOptions(), [f"storytransformer settings must be an object, not {raw!r}; using the defaults"]
    options, errors = structure_leniently(ServerOptions, raw, prefix="storytransformer", aliases=camel,
                                          describe=_describe)
    engine, engine_errors = structure_leniently(EngineOverrides, raw, prefix="storytransformer", aliases=camel,
                                                describe=_describe)
    rules = _rules(raw.get("rules"), known_rules, errors)
    fos = raw.get("fixOnSave")
    if isinstance(fos, dict) and "kinds" in fos:
        options = dataclasses.replace(options, fix_on_save=dataclasses.replace(
            options.fix_on_save, policy=_policy(fos["kinds"], "fixOnSave.kinds", errors)))
    return dataclasses.replace(options, rules=rules, engine=engine), errors + engine_errors


def _policy(value: Any, key: str, errors: list[str]) -> FixPolicy:
    using = f"using {ON_SAVE.describe().split(', ')}"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        try:
            return FixPolicy.parse(value, f"storytransformer.{key}")
        except ValueError as e:
            errors.append(f"{e}; {using}")
            return ON_SAVE
    errors.append(f"storytransformer.{key} must be a list of safe, unsafe, deletion, not {value!r}; {using}")
    return ON_SAVE


def _rules(value: Any, known_rules: set[str] | None, errors: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(f"storytransformer.rules must be an object, not {value!r}; using the defaults")
        return {}
    rules: dict[str, str] = {}
    for code, sev in value.items():
        norm = str(code).upper()
        if known_rules is not None and norm not in known_rules:
            errors.append(f"storytransformer.rules names unknown rule {code!r}; ignored")
        elif not isinstance(sev, str) or sev.lower() not in SEVERITIES:
            errors.append(f"storytransformer.rules.{code} must be one of {', '.join(SEVERITIES)}, not {sev!r}; "
                          "using the rule's default")
        else:
            rules[norm] = sev.lower()
    return rules

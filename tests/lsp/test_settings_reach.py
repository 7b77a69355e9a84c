"""Every VS Code setting the extension offers reaches the component it configures (issue: settings that were
validated and then dropped, like the daemon's idle times).

One row per key of vscode-extension/package.json ``contributes.configuration``: a key the language server
reads is parsed from the JSON the extension sends into the named field of :class:`ServerOptions`, and the
module that acts on it reads that field; a key the extension itself acts on is read by its TypeScript. A new
setting without a row fails here. The behaviour behind each row has its own tests (diagnostics, fix-all,
model, the daemon's idle times in test_daemon_idle_settings.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from storytransformer.checking import CHECK_FIX
from storytransformer_server.lsp.options import ServerOptions, camel, parse_options

ROOT = Path(__file__).resolve().parents[2]
LSP = ROOT / "server" / "storytransformer_server" / "lsp"
EXT = ROOT / "vscode-extension" / "src"

# key -> (JSON value sent, ServerOptions attribute path, value there, module that acts on it, what it reads)
SERVER = {
    "rules": ({"ST201": "off"}, "rules", {"ST201": "off"}, "configuration.py", r"options\.rules"),
    "debounceMs": (40, "debounce_ms", 40, "diagnostics.py", r"options\.debounce_ms"),
    "fixOnSave.model": (True, "fix_on_save.model", True, "fix_all.py", r"options\.fix_on_save\.model"),
    "fixOnSave.kinds": (["safe", "deletion"], "fix_on_save.policy", CHECK_FIX, "fix_all.py",
                        r"options\.fix_on_save\.policy"),
    "model": ("/models/qwen", "engine.model", "/models/qwen", "commands.py", r"options\.engine\.to_engine_config\(\)"),
    "quantization": ("nf4", "engine.quantization", "nf4", "commands.py", r"options\.engine\.to_engine_config\(\)"),
    "device": ("cuda:1", "engine.device", "cuda:1", "commands.py", r"options\.engine\.to_engine_config\(\)"),
    "remoteUrl": ("http://127.0.0.1:8000/v1", "engine.remote_url", "http://127.0.0.1:8000/v1", "commands.py",
                  r"options\.engine\.to_engine_config\(\)"),
    "daemon.enabled": (False, "daemon.enabled", False, "model_adapter.py", r"options\.enabled"),
    "daemon.spawn": (False, "daemon.spawn", False, "model_adapter.py", r"options\.spawn"),
    "daemon.timeoutS": (7.5, "daemon.timeout_s", 7.5, "model_adapter.py", r"options\.timeout_s"),
    "daemon.idleUnloadMinutes": (2, "daemon.idle_unload_minutes", 2, "model_adapter.py", r"options\.start_flags\(\)"),
    "daemon.idleExitMinutes": (3, "daemon.idle_exit_minutes", 3, "model_adapter.py", r"options\.start_flags\(\)"),
}
# key -> (TypeScript file of the extension that acts on it, what it reads)
CLIENT = {
    "files": ("serverController.ts", r"readFilePatterns\(config\.get\(CLIENT_SETTINGS\.files\)"),
    "python": ("serverController.ts", r"config\.get\(CLIENT_SETTINGS\.python\)"),
    "server.path": ("serverController.ts", r"config\.get\(CLIENT_SETTINGS\.serverPath\)"),
    # vscode-languageclient reads <client id>.trace.server itself: the client id is the section's name
    "trace.server": ("serverController.ts", r"new StoryClient\(SECTION,"),
}


def offered() -> list[str]:
    data = json.loads((ROOT / "vscode-extension" / "package.json").read_text("utf-8"))
    sections = data["contributes"]["configuration"]
    sections = sections if isinstance(sections, list) else [sections]
    return [k.removeprefix("storytransformer.") for s in sections for k in s["properties"]]


def nested(key: str, value):
    """``daemon.timeoutS`` -> {"daemon": {"timeoutS": value}}, as VS Code sends the section."""
    *parents, last = key.split(".")
    out = {last: value}
    for p in reversed(parents):
        out = {p: out}
    return out


def test_every_offered_setting_has_a_row():
    keys = offered()
    assert keys, "no settings found in package.json"
    missing = [k for k in keys if k not in SERVER and k not in CLIENT]
    assert not missing, f"settings offered in package.json that no row says where they go: {missing}"
    stale = [k for k in [*SERVER, *CLIENT] if k not in keys]
    assert not stale, f"rows for settings package.json no longer offers: {stale}"


@pytest.mark.parametrize("key", list(SERVER))
def test_a_server_setting_reaches_its_option_and_its_consumer(key):
    value, path, expected, module, reads = SERVER[key]
    options, errors = parse_options(nested(key, value), {"ST201"})
    assert errors == []
    got = options
    for part in path.split("."):
        got = getattr(got, part)
    assert got == expected and got != _default(path), f"{key} did not reach ServerOptions.{path}"
    assert re.search(reads, (LSP / module).read_text("utf-8")), f"{module} never reads {path}"


def test_the_idle_settings_become_flags_of_the_daemon_the_server_starts():
    options, _ = parse_options({"daemon": {"idleUnloadMinutes": 2, "idleExitMinutes": 0.5}})
    assert options.daemon.start_flags() == ["--idle-unload", "2", "--idle-exit", "0.5"]
    assert parse_options({})[0].daemon.start_flags() == []  # unset: the daemon's own settings
    client = (ROOT / "server" / "storytransformer_server" / "daemon" / "client.py").read_text("utf-8")
    assert re.search(r"daemon_command\(\"start\", .*\*start_flags\)", client)


@pytest.mark.parametrize("key", list(CLIENT))
def test_a_client_setting_is_read_by_the_extension(key):
    source, reads = CLIENT[key]
    assert re.search(reads, (EXT / source).read_text("utf-8")), f"{source} never reads storytransformer.{key}"


def test_camel_case_keys_match_the_extension():
    settings_ts = (EXT / "settings.ts").read_text("utf-8")
    for key in SERVER:
        assert f'"{key}"' in settings_ts, f"the extension does not send storytransformer.{key}"
        assert key.split(".")[-1] == camel(SERVER[key][1].split(".")[-1]) or key in ("model", "quantization",
                                                                                    "device", "remoteUrl", "rules",
                                                                                    "fixOnSave.kinds")


def _default(path: str):
    got = ServerOptions()
    for part in path.split("."):
        got = getattr(got, part)
    return got

"""Hostile configuration values: each one stops the run with exit code 2 and a message naming the file and
the setting; none allocates gigabytes, prints a traceback or silently changes what is checked."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storytransformer.config import MAX_CONFIG_BYTES, ConfigError, from_table, load_config

ROOT = Path(__file__).resolve().parents[2]
STORY = "As a visitor, I want to search the catalogue, so that I can find a book.\n"


def cli_env(cwd: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "STORYTRANSFORMER_CONFIG_DIR": str(cwd / ".user-config"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = cli_env(cwd)
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


# Runs the CLI and writes its own peak resident memory (VmHWM, KiB) at exit. Not getrusage: a child's
# ru_maxrss keeps the high-water mark of the process it was forked from, here a pytest that may hold models.
PEAK_PROBE = """
import atexit, os, runpy, sys
def peak():
    with open("/proc/self/status") as f, open(os.environ["PEAK_FILE"], "w") as out:
        out.write(next(line.split()[1] for line in f if line.startswith("VmHWM:")))
atexit.register(peak)
sys.argv[0] = "storytransformer"
runpy.run_module("storytransformer", run_name="__main__", alter_sys=True)
"""


def cli_with_peak(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, int]:
    """The run and its own peak memory in KiB."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("peak memory is read from /proc (Linux)")
    peak_file = cwd / ".peak"
    env = {**cli_env(cwd), "PEAK_FILE": str(peak_file)}
    r = subprocess.run([sys.executable, "-c", PEAK_PROBE, *args], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)
    return r, int(peak_file.read_text())


def workspace(tmp_path: Path, body: str | bytes, name: str = ".storytransformer.toml") -> Path:
    (tmp_path / ".git").mkdir(exist_ok=True)
    (tmp_path / "backlog.txt").write_text(STORY, "utf-8")
    p = tmp_path / name
    p.write_bytes(body if isinstance(body, bytes) else body.encode())
    return p


DEEP = "x = " + "[" * 5000 + "]" * 5000 + "\n"

HOSTILE = [
    # (file body, the setting or problem the message must name)
    ('template = "As a {role:1500000000}, I want to {means}, so that {ends}."\n', "template"),
    ('template = "As a {role:50000000000}, I want to {means}."\n', "template"),
    ('template = "As a {role!r}, I want to {means}."\n', "template"),
    ('template = "' + "x" * 5000 + '{means}"\n', "template"),
    ("max_file_bytes = 0\n", "max_file_bytes"),
    ("max_file_bytes = -1\n", "max_file_bytes"),
    ("max-file-bytes = 99999999999999\n", "max_file_bytes"),
    ("max_words = 0\n", "max_words"),
    ("max_words = 10000000000000000000000\n", "max_words"),
    ("[similarity]\ntop_k = 100000000000\n", "similarity.top_k"),
    ("[similarity]\nbatch_size = 0\n", "similarity.batch_size"),
    ("[similarity]\nduplicate_threshold = nan\n", "similarity.duplicate_threshold"),
    ("[similarity]\nlexical_weight = inf\n", "similarity.lexical_weight"),
    ("[engine]\nmax_new_tokens = 1000000000\n", "engine.max_new_tokens"),
    ("[engine]\ntimeout_s = nan\n", "engine.timeout_s"),
    ("[engine]\ntimeout_s = -1\n", "engine.timeout_s"),
    ("[engine]\nretries = 1000000\n", "engine.retries"),
    ("[engine]\nremote_url = 'file:///etc/passwd'\n", "engine.remote_url"),
    ("[estimate]\ndecode_tokens_per_s = nan\n", "estimate.decode_tokens_per_s"),
    ("[estimate]\nprefill_tokens_per_s = inf\n", "estimate.prefill_tokens_per_s"),
    ("[estimate]\noutput_ratio = -inf\n", "estimate.output_ratio"),
    ("[[estimate.hosted]]\nname = 'm'\ninput_per_million = nan\noutput_per_million = 1\ncontext_window = 1\n",
     "input_per_million"),
    (DEEP, "nested too deeply"),
    ("[engine]\nallowed_words = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
]


@pytest.mark.parametrize("body, named", HOSTILE, ids=[h[1] + f"-{i}" for i, h in enumerate(HOSTILE)])
def test_hostile_values_are_a_config_error_naming_the_setting(tmp_path, body, named):
    p = workspace(tmp_path, body)
    with pytest.raises(ConfigError) as e:
        load_config(start=tmp_path)
    assert named in str(e.value) and str(p) in str(e.value)


@pytest.mark.parametrize("body, named", [HOSTILE[0], HOSTILE[4], HOSTILE[5], HOSTILE[12], (DEEP, "nested too deeply")])
def test_the_cli_exits_2_with_the_setting_named_and_no_traceback(tmp_path, body, named):
    p = workspace(tmp_path, body)
    r, peak_kib = cli_with_peak("check", "backlog.txt", cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert named in r.stderr and str(p) in r.stderr
    assert "Traceback" not in r.stderr
    assert peak_kib < 400_000, peak_kib  # a 1.5e9 template width allocated 1.49 GB before


def test_estimate_nan_exits_2_not_a_value_error(tmp_path):
    p = workspace(tmp_path, "[estimate]\ndecode_tokens_per_s = nan\n")
    r = cli("estimate", "backlog.txt", cwd=tmp_path)
    assert r.returncode == 2 and "estimate.decode_tokens_per_s" in r.stderr and str(p) in r.stderr
    assert "Traceback" not in r.stderr


def test_deep_nesting_in_pyproject_is_an_error_naming_it(tmp_path):
    p = workspace(tmp_path, "[tool.storytransformer]\n" + DEEP, name="pyproject.toml")
    r = cli("check", "backlog.txt", cwd=tmp_path)
    assert r.returncode == 2 and str(p) in r.stderr and "nested too deeply" in r.stderr
    assert "Traceback" not in r.stderr and "RecursionError" not in r.stderr


def test_oversized_and_undecodable_files_are_errors(tmp_path):
    workspace(tmp_path, b"# " + b"x" * MAX_CONFIG_BYTES + b"\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(start=tmp_path)
    workspace(tmp_path, b"max_words = 3 # \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(start=tmp_path)


def test_values_at_the_bounds_are_accepted():
    cfg = from_table({"max_file_bytes": 1, "max_words": 10_000, "similarity": {"top_k": 1_000, "lexical_weight": 1},
                      "engine": {"retries": 0, "timeout_s": 0.5}})
    assert cfg.max_file_bytes == 1 and cfg.similarity.top_k == 1_000
    with pytest.raises(ConfigError, match="max_file_bytes"):
        from_table({"max_file_bytes": 1 << 31})


def test_a_pyproject_without_our_table_is_not_parsed(tmp_path):
    """Someone else's huge or odd pyproject.toml never stops a run (only files that mention us are read)."""
    workspace(tmp_path, DEEP, name="pyproject.toml")
    assert load_config(start=tmp_path).source == "<defaults>"


def test_daemon_settings_are_bounded_and_parse_errors_are_clear(tmp_path):
    pytest.importorskip("storytransformer_server")
    from storytransformer_server.daemon.settings import SettingsError, load_settings

    for body, named in [("idle_unload_s = nan\n", "idle_unload_s"), ("request_deadline_s = inf\n", "request_deadline_s"),
                        ("max_message_bytes = 100000000000\n", "max_message_bytes"), (DEEP, "nested too deeply"),
                        ("debounce_s = 1e300\n", "debounce_s"), ("handshake_timeout_s = nan\n", "handshake_timeout_s"),
                        ("max_connections = 0\n", "max_connections")]:
        p = tmp_path / "daemon.toml"
        p.write_text(body)
        with pytest.raises(SettingsError) as e:
            load_settings(p)
        assert named in str(e.value) and str(p) in str(e.value)


def test_editor_settings_refuse_non_finite_numbers():
    pytest.importorskip("lsprotocol")
    from storytransformer_server.lsp.options import parse_options

    opts, errors = parse_options({"debounceMs": math.nan, "daemon": {"timeoutS": math.inf}})
    assert opts.debounce_ms == 150 and opts.daemon.timeout_s == 30.0 and len(errors) == 2

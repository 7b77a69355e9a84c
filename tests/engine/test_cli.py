"""``storytransformer engine status|load`` and ``storytransformer suggest`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from storytransformer.engine.contract import STATUS_SCHEMA

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_status_json_matches_the_schema_without_loading(tmp_path):
    r = cli("engine", "status", "--format", "json", cache=tmp_path / "cache", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    jsonschema.validate(data, STATUS_SCHEMA)
    assert data["state"] == "unloaded" and data["device"] == "cpu" and data["attention"] == "eager"
    assert data["cache_dir"].startswith(str(tmp_path / "cache"))
    assert any("no converted cache yet" in n for n in data["notes"])


@pytest.mark.slow
def test_load_reports_the_cache_and_the_time(cold_engine, model_cache, tmp_path):
    r = cli("engine", "load", "--format", "json", cache=model_cache, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    jsonschema.validate(data, STATUS_SCHEMA)
    assert data["state"] == "ready" and data["loaded_from"] == "cache" and data["load_seconds"] > 0
    status = json.loads(cli("engine", "status", "--format", "json", cache=model_cache, cwd=tmp_path).stdout)
    assert status["state"] == "unloaded" and any("converted cache present" in n for n in status["notes"])
    assert data["memory_bytes"] > 100e6


def test_impossible_setting_exits_2_naming_it(tmp_path):
    (tmp_path / ".storytransformer.toml").write_text('[engine]\nquantization = "nf4"\ndevice = "cpu"\n')
    r = cli("engine", "load", cache=tmp_path / "cache", cwd=tmp_path)
    assert r.returncode == 2
    assert "engine.quantization" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_suggest_prints_only_grounded_proposals(cold_engine, model_cache, tmp_path):
    backlog = tmp_path / "backlog.txt"
    backlog.write_text("As a visitor, I want to search and filter events, so that I find concerts.\n"
                       "As a cook, I want to boil pasta, so that dinner is ready.\n"
                       "As a cook, I want to boil pasta, so that dinner is ready.\n")
    r = cli("suggest", str(backlog), "--format", "json", "--no-generate", cache=model_cache, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    kinds = {p["kind"] for p in out}
    assert {"split", "merge"} <= kinds
    assert all(p["accepted"] and not p["grounding"]["invented_words"] for p in out)
    split = next(p for p in out if p["kind"] == "split")
    assert split["sources"][0]["line"] == 1 and len(split["stories"]) == 2


def test_suggest_unknown_story_id_exits_2(tmp_path):
    (tmp_path / "b.txt").write_text("As a cook, I want to boil pasta.\n")
    r = cli("suggest", str(tmp_path / "b.txt"), "--story", "nope", cache=tmp_path / "cache", cwd=tmp_path)
    assert r.returncode == 2 and "no story with id 'nope'" in r.stderr


@pytest.mark.slow
def test_suggest_for_one_story_by_file_and_line(cold_engine, model_cache, tmp_path):
    backlog = tmp_path / "backlog.txt"
    backlog.write_text("As a cook, I want to boil pasta, so that dinner is ready.\n"
                       "As a visitor, I want to search and filter events, so that I find concerts.\n")
    r = cli("suggest", str(backlog), "--story", f"{backlog}:2", "--kind", "split", "--format", "json", "--no-generate",
            cache=model_cache, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out and {p["sources"][0]["line"] for p in out} == {2}

"""The model checks end to end: `storytransformer check --model-checks` on the real packaged SmolLM2-135M
(converted once per session into a temporary cache, see conftest.py), on a small backlog written for this
test. The thresholds are forced to 0 so that every question asked becomes a finding whose shape can be
checked; what the model is worth at the tuned thresholds is measured in benchmarks/model_checks_quality.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BACKLOG = [
    "As a beekeeper, I want to log each hive inspection, so that I can track the colony's health.",
    "As a beekeeper, I want hive the inspection notes edited.",
    "As a beekeeper, I want inspection logs deleted after a week.",
    "As a beekeeper, I want inspection logs kept forever, so that I can compare seasons.",
]


def check(tmp_path: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'server'}", "STORYTRANSFORMER_CACHE_DIR": str(cache),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "storytransformer", "check", "hives.txt", "--no-semantic",
                           "--format", "json", "--model-checks", *args],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)


@pytest.fixture
def backlog(tmp_path, cold_engine):
    """The backlog, once the session's cache holds the converted model (loaded by ``cold_engine``)."""
    (tmp_path / "hives.txt").write_text("\n".join(BACKLOG) + "\n")
    return tmp_path


def test_model_checks_through_the_cli_name_the_model_the_rule_and_the_other_story(backlog, model_cache):
    run = check(backlog, model_cache, "--select", "ST406,ST1201", "--model-threshold", "ST406=0",
                "--model-threshold", "ST1201=0", "--model-budget", "5")
    assert run.returncode == 1, run.stderr
    found = [f for f in json.loads(run.stdout) if f["code"] in ("ST406", "ST1201")]
    # the budget: 5 questions, story by story (ST406, then its conflict pairs), each answered "yes" at threshold 0
    assert "5 of" in run.stderr and "question budget ran out" in run.stderr and "SmolLM2-135M" in run.stderr
    garbled = [f for f in found if f["code"] == "ST406"]
    conflicts = [f for f in found if f["code"] == "ST1201"]
    assert garbled and conflicts and len(garbled) + len(conflicts) // 2 == 5
    for f in found:
        assert f["file"] == "hives.txt" and 1 <= f["line"] <= len(BACKLOG)
        assert "the model SmolLM2-135M" in f["message"] and "P(yes)" in f["message"]
    for f in conflicts:  # each names its other story by file:line, in the message and as related
        [other] = f["related"]
        assert other["file"] == "hives.txt" and other["line"] != f["line"]
        assert f"hives.txt:{other['line']}" in f["message"]
        assert any(g["line"] == other["line"] and g["related"][0]["line"] == f["line"] for g in conflicts)


def test_model_checks_stop_at_their_time_budget(backlog, model_cache):
    run = check(backlog, model_cache, "--model-timeout", "0.001")
    assert "time budget ran out" in run.stderr
    assert not [f for f in json.loads(run.stdout) if f["code"] in ("ST406", "ST1002", "ST1102", "ST1201", "ST1301")]


def test_model_checks_at_the_tuned_thresholds_report_what_they_asked(backlog, model_cache):
    run = check(backlog, model_cache, "--select", "ST406")
    assert "4 of 4 questions asked of SmolLM2-135M" in run.stderr, run.stderr
    for f in json.loads(run.stdout):
        assert f["code"] == "ST406" and "the model SmolLM2-135M" in f["message"]


RESTATED = [
    "As a member, I want to renew a borrowed book online, so that I can keep reading it.",
    "As a library user, I want to extend the loan of a book I borrowed online, so that I can read it for longer.",
    "As a caretaker, I want to order new light bulbs for the reading room.",
]


def test_the_model_judges_the_embedding_indexs_near_pairs_and_names_the_other_story(tmp_path, cold_engine, model_cache):
    (tmp_path / "loans.txt").write_text("\n".join(RESTATED) + "\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'server'}", "STORYTRANSFORMER_CACHE_DIR": str(model_cache),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "storytransformer", "check", "loans.txt", "--format", "json",
                          "--model-checks", "--select", "ST603,ST606", "--model-threshold", "ST606=0"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    # one near pair (lines 1 and 2; the caretaker's story is far from both), asked once, "yes" at threshold 0
    assert "1 of 1 questions asked of SmolLM2-135M" in run.stderr, run.stderr
    found = sorted((f["line"], f["related"][0]["line"]) for f in json.loads(run.stdout) if f["code"] == "ST606")
    assert found == [(1, 2), (2, 1)]
    f = next(f for f in json.loads(run.stdout) if f["code"] == "ST606" and f["line"] == 2)
    assert "loans.txt:1" in f["message"] and "same functionality" in f["message"]


def test_a_model_of_ones_own_is_warned_that_the_thresholds_were_tuned_for_another(backlog, model_cache):
    from storytransformer.engine.modelfiles import default_gguf

    (backlog / "pyproject.toml").write_text(f'[tool.storytransformer.engine]\nmodel = "{default_gguf()}"\n')
    run = check(backlog, model_cache, "--select", "ST406", "--model-budget", "1")
    assert "the thresholds of ST406 were tuned for the packaged SmolLM2-135M, not for" in run.stderr, run.stderr
    assert "1 of 4 questions asked" in run.stderr
    quiet = check(backlog, model_cache, "--select", "ST406", "--model-budget", "1", "--model-threshold", "ST406=0.5")
    assert "were tuned for the packaged" not in quiet.stderr and "1 of 4 questions asked" in quiet.stderr


def test_the_report_runs_the_model_checks_and_lists_their_findings(tmp_path, cold_engine, model_cache):
    (tmp_path / "loans.txt").write_text("\n".join(RESTATED) + "\n")
    (tmp_path / ".storytransformer.toml").write_text('select = ["ST603", "ST606"]\n')
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'server'}", "STORYTRANSFORMER_CACHE_DIR": str(model_cache),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "storytransformer", "report", "loans.txt", "-o", "r.html",
                          "--json", "r.json", "--no-model", "--no-estimate", "--model-checks",
                          "--model-threshold", "ST606=0"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    found = sorted((f["line"], f["related"][0]["line"]) for f in data["findings"] if f["code"] == "ST606")
    assert found == [(1, 2), (2, 1)]
    assert any("1 of 1 questions asked of SmolLM2-135M" in n for n in data["notes"]), data["notes"]
    assert "ST606" in (tmp_path / "r.html").read_text()


def test_the_reports_model_checks_and_merge_ranking_share_one_loaded_model(tmp_path, cold_engine, model_cache):
    """With --model-checks and the ranking both on, the model loaded for the checks ranks the merges: no
    second load in the background, and the cluster's merge is still ranked by it."""
    (tmp_path / "loans.txt").write_text("\n".join([*RESTATED[:2], "As a member, I want to renew my borrowed books "
                                                   "on the website, so that I can keep reading them.", RESTATED[2]]) + "\n")
    (tmp_path / ".storytransformer.toml").write_text('select = ["ST603", "ST606"]\n')
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'server'}", "STORYTRANSFORMER_CACHE_DIR": str(model_cache),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "storytransformer", "report", "loans.txt", "-o", "r.html",
                          "--json", "r.json", "--no-estimate", "--model-checks", "--model-threshold", "ST606=0"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["merge_summary"]["ranked_by_model"] == 1, data["merge_summary"]
    assert "model load (in parallel)" not in data["timings"] and "asking the model" in data["timings"]
    assert any("questions asked of SmolLM2-135M" in n for n in data["notes"]), data["notes"]

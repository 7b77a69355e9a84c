"""The whole-backlog report: every cluster gets a merge proposal or says why not, the progress
counts clusters, and ``--max-merges`` caps the proposals. Real subprocesses on a real workspace
recombined from the real backlogs (written at test time, nothing copied into the project)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html import escape
from pathlib import Path

import pytest

from .conftest import ROOT, run_cli

KINDS = {"model", "deterministic", "none", "not proposed"}
TEMPLATE_WORDS = {"a", "an", "as", "i", "to", "and", "or", "so", "that", "want", "can", "be", "able"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, real_backlogs) -> Path:
    """400 stories in 4 files, recombined from the real backlogs with exact and near duplicates."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from workspace_gen import generate
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    target = tmp_path_factory.mktemp("whole") / "backlog"
    generate(target, stories=400, files=4, seed=11, real=real_backlogs)
    return target


def run_on_a_terminal(args: list[str], cwd: Path = ROOT) -> tuple[int, str]:
    """``storytransformer ARGS`` with stderr a pseudo-terminal (so rich draws its progress)."""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "160"}
    proc = subprocess.Popen([sys.executable, "-m", "storytransformer", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=600)
    os.close(leader)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def full_report(workspace, tmp_path_factory):
    """The report of the whole workspace without the language model, its stderr a terminal."""
    tmp = tmp_path_factory.mktemp("whole-report")
    data_file, page = tmp / "r.json", tmp / "r.html"
    rc, seen = run_on_a_terminal(["report", str(workspace), "-o", str(page), "--json", str(data_file),
                                  "--no-model", "--no-estimate"])
    assert rc == 0, seen
    return json.loads(data_file.read_text("utf-8")), page.read_text("utf-8"), seen


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def test_every_cluster_has_a_merge_proposal_or_says_why(full_report):
    data, html, _ = full_report
    clusters = data["clusters"]
    assert len(clusters) >= 5, "the workspace should hold several clusters"
    by_kind = {k: [c for c in clusters if c["merge_kind"] == k] for k in KINDS}
    assert sum(len(v) for v in by_kind.values()) == len(clusters)  # every cluster has one of the kinds
    assert not by_kind["not proposed"] and not by_kind["model"]  # no cap, no model
    assert by_kind["deterministic"], "most clusters have a grounded merge"
    for c in by_kind["deterministic"]:
        assert c["merge"]["text"] and c["merge"]["score"] is None and not c["merge"]["ranked"]
        assert c["merge_note"] == "deterministic: no model (--no-model)"
        source_words = set().union(*(words(s["text"]) for s in c["stories"]))
        assert words(c["merge"]["text"]) <= source_words | TEMPLATE_WORDS, c  # grounded: no invented word
    for c in by_kind["none"]:
        assert c["merge"] is None
        assert re.match(r"no grounded merge: \S", c["merge_note"]), c["merge_note"]  # and why
    summary = data["merge_summary"]
    assert summary["clusters"] == len(clusters)
    assert summary["with_merge"] == len(by_kind["deterministic"])
    assert summary["by_kind"]["deterministic"] == len(by_kind["deterministic"])
    assert summary["by_kind"]["none"] == len(by_kind["none"])
    # the page shows every cluster with what its merge is
    page = html.split('id="storytransformer-report-data"')[0]  # what is shown, not the embedded data
    assert page.count('id="cluster-C') == len(clusters)
    assert page.count("deterministic: no model (--no-model)") == len(by_kind["deterministic"])
    assert all(escape(c["merge_note"]) in page for c in by_kind["none"])
    # a filter by what the merge is, with the count of each kind
    assert "<select id=filter-merge>" in page
    assert f'<option value="deterministic">deterministic ({len(by_kind["deterministic"]):,})</option>' in page
    # where the time went, step by step
    assert {"checking stories", "finding clusters", "proposing merges", "writing page"} <= set(data["timings"])
    assert data["html_bytes"] == len(html.encode("utf-8"))


def test_progress_counts_the_clusters(full_report):
    data, _, seen = full_report
    n = len(data["clusters"])
    assert f"Proposing merges (deterministic) for {n} of {n} clusters" in seen
    assert f"{n}/{n}" in seen  # rich's counter of clusters done
    assert f"{n} clusters, " in seen  # the closing line


def test_max_merges_proposes_one_and_the_others_say_why(workspace, tmp_path):
    data_file = tmp_path / "r.json"
    r = run_cli("report", str(workspace), "-o", str(tmp_path / "r.html"), "--json", str(data_file),
                "--no-model", "--no-estimate", "--max-merges", "1")
    assert r.returncode == 0, r.stderr
    clusters = json.loads(data_file.read_text("utf-8"))["clusters"]
    assert len(clusters) >= 2
    first, rest = clusters[0], clusters[1:]
    assert first["merge_kind"] in ("deterministic", "none")  # the largest cluster was proposed
    assert first["merge"] is not None or first["merge_note"].startswith("no grounded merge: ")
    for c in rest:
        assert c["merge"] is None and c["merge_kind"] == "not proposed"
        assert c["merge_note"] == "not proposed: --max-merges 1 proposes a merge for the 1 largest clusters only"


def test_the_model_ranks_while_its_time_lasts(workspace, tmp_path):
    """The packaged model with no time: every merge stays deterministic and says so per cluster."""
    data_file = tmp_path / "r.json"
    r = run_cli("report", str(workspace), "-o", str(tmp_path / "r.html"), "--json", str(data_file),
                "--no-estimate", "--model-seconds", "0")
    assert r.returncode == 0, r.stderr
    data = json.loads(data_file.read_text("utf-8"))
    assert data["merges"]["ranked_by"], r.stderr  # the model loaded
    proposed = [c for c in data["clusters"] if c["merge"]]
    assert proposed
    assert all(c["merge_kind"] == "deterministic" and c["merge_note"] == "deterministic: no model time left"
               for c in proposed)
    assert data["merge_summary"]["ranked_by_model"] == 0
    assert any(f"0 of {len(proposed)} clusters" in n for n in data["notes"])

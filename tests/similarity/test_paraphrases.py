"""Written paraphrases (benchmarks/labels/pairs, written by independent writers) against the real
backlog they restate: `check` reports the paraphrase as a semantic duplicate naming the real story by
file:line, leaves its distractor alone, and `similar`, the finding and the index show one figure."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from storytransformer.similarity.classify import PairScores, Relation, Thresholds, classify
from storytransformer.similarity.compared_parts import role_lemmas, role_overlap

PAIRS = Path(__file__).resolve().parents[2] / "benchmarks" / "labels" / "pairs" / "pairs.csv"
# A held-out paraphrase (never used for tuning) and the distractor written for the same story.
PARAPHRASE, DISTRACTOR = "P060", None


def pair_rows() -> dict[str, dict]:
    with PAIRS.open(encoding="utf-8", newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def run(*args, cwd):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def workspace(real_backlogs, tmp_path_factory):
    """The real backlog, plus the written paraphrase and distractor of one of its stories as new files."""
    rows = pair_rows()
    para = rows[PARAPHRASE]
    assert para["part"] == "held_out" and para["label"] == "duplicate"
    name, line = para["a"].split(":")
    distractor = next(r for r in rows.values() if r["kind"] == "distractor" and r["a"] == para["a"])
    d = tmp_path_factory.mktemp("paraphrase")
    (d / f"{name}.txt").write_text((real_backlogs / f"{name}.txt").read_text("utf-8"), "utf-8")
    (d / "restated.txt").write_text(para["b_text"] + "\n", "utf-8")
    (d / "distractor.txt").write_text(distractor["b_text"] + "\n", "utf-8")
    return d, f"{name}.txt", int(line), para, distractor


@pytest.mark.slow
def test_check_reports_the_paraphrase_as_a_duplicate_by_file_and_line(workspace):
    d, backlog, line, para, _ = workspace
    r = run("check", ".", "--format", "json", cwd=d)
    assert r.returncode in (0, 1), r.stderr
    findings = json.loads(r.stdout)["findings"] if isinstance(json.loads(r.stdout), dict) else json.loads(r.stdout)
    mine = [f for f in findings if f["code"] == "ST603" and Path(f["file"]).name == "restated.txt"]
    assert len(mine) == 1, [f["message"] for f in findings if f["code"].startswith("ST6")]
    message = mine[0]["message"]
    assert f"{backlog}:{line}" in message  # the other story by file:line ...
    assert not re.search(r"[a-z0-9]+-[0-9a-f]{8}", message)  # ... never an internal id
    # The distractor (same role, another need) is no duplicate of the real story.
    others = [f for f in findings if f["code"] == "ST603" and Path(f["file"]).name == "distractor.txt"]
    assert not any(f"{backlog}:{line}" in f["message"] for f in others)


@pytest.mark.slow
def test_similar_and_the_finding_show_the_same_figure(workspace):
    d, backlog, line, para, _ = workspace
    check = json.loads(run("check", ".", "--format", "json", cwd=d).stdout)
    findings = check["findings"] if isinstance(check, dict) else check
    (finding,) = [f for f in findings if f["code"] == "ST603" and Path(f["file"]).name == "restated.txt"]
    shown = float(re.search(r"\((\d\.\d\d)\)", finding["message"]).group(1))
    r = run("similar", para["b_text"], ".", "-k", "3", "--format", "json", cwd=d)
    assert r.returncode == 0, r.stderr
    top = json.loads(r.stdout)["results"][0]
    assert (Path(top["file"]).name, top["line"]) == (backlog, line)
    assert top["relation"] == "duplicate"
    assert f"{top['score']:.2f}" == f"{shown:.2f}"
    text = run("similar", para["b_text"], ".", "-k", "1", cwd=d)
    assert text.returncode == 0, text.stderr
    assert text.stdout.split()[1] == f"{shown:.2f}" and f"{backlog}:{line}" in text.stdout


@pytest.mark.slow
def test_the_finding_and_the_report_pair_score_agree(workspace, embedder):
    """The report scores cluster edges with ``index.pair_scores``: the same figure as the finding."""
    from storytransformer.config import Config
    from storytransformer.similarity import semantic_findings
    from storytransformer.similarity.workspace_findings import _reusable_index
    from storytransformer.workspace import Workspace

    d, backlog, line, para, _ = workspace
    ws = Workspace.from_paths([str(d)], Config())
    findings = [f for f in semantic_findings(ws) if f.code == "ST603" and Path(f.file).name == "restated.txt"]
    (finding,) = findings
    other = finding.related[0]
    assert (Path(other.file).name, other.range.start.line + 1) == (backlog, line)
    index = _reusable_index(ws, ws.config.similarity)
    me = next(s for s in ws.stories() if Path(s.file).name == "restated.txt")
    sc = index.pair_scores((me.file, me.id), (other.file, other.story_id))
    assert sc.similarity == pytest.approx(finding.data["similarity"], abs=1e-4)
    assert f"similarity {sc.similarity:.2f}" in other.message


def test_a_pair_far_below_a_nearer_neighbour_is_no_duplicate():
    t = Thresholds()
    near = PairScores(whole=0.85, means=0.9, means_lexical=0.5, role=1.0, gap=0.0)
    behind = PairScores(whole=0.85, means=0.9, means_lexical=0.5, role=1.0, gap=-(t.near_best + 0.05))
    assert classify(near, t) is Relation.DUPLICATE
    assert classify(behind, t) is not Relation.DUPLICATE
    assert near.similarity == behind.similarity == 0.85  # the figure shown does not depend on the neighbours


@pytest.mark.parametrize("a, b, same", [
    ("a PI", "a principal investigator", True),
    ("an admin", "an administrator", True),
    ("a DAMS manager", "the manager of the digital asset management system", True),
    ("an OlderPerson", "an elderly user", True),
    ("a repository manager", "a visitor", False),
    ("a user", "an admin", False),
])
def test_roles_in_other_words_are_the_same_role(a, b, same):
    assert (role_overlap(role_lemmas(a), role_lemmas(b)) >= Thresholds().role) is same

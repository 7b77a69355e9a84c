"""Near-duplicate clusters in the report: graph data, drawings, and merges from the engine."""

from __future__ import annotations

import json
import re
import sys

import pytest

from storytransformer.report.collect import NO_PROPOSAL
from storytransformer.report.merges import grounded
from storytransformer.report.graph import circular, cluster_svg, layout

from .conftest import run_cli

CLUSTER = {
    "id": "C1", "size": 3, "cohesion": 0.9, "representative": "S1",
    "stories": [{"story_id": "S1", "file": "a.txt", "line": 1, "text": "As a user, I want to log in."},
                {"story_id": "S2", "file": "a.txt", "line": 2, "text": "As a user, I want to sign in."},
                {"story_id": "S3", "file": "b.txt", "line": 7, "text": "As a user, I want to log in <now>."}],
    "edges": [{"a": "S1", "b": "S2", "similarity": 0.91, "relation": "duplicate"},
              {"a": "S1", "b": "S3", "similarity": 0.7, "relation": "overlap"}],
    "merge": None, "merge_note": NO_PROPOSAL,
}


def test_cluster_svg_has_a_node_per_story_and_an_edge_per_similarity():
    svg = cluster_svg(CLUSTER)
    assert svg.count('<g class="node') == 3
    assert svg.count('<g class="node representative"') == 1
    assert svg.count('<line class="edge"') == 2
    assert "similarity 0.91" in svg and "&lt;now&gt;" in svg and "<now>" not in svg


def test_layout_spreads_nodes_and_falls_back_to_a_circle(monkeypatch):
    pos = layout(["0", "1", "2"], [{"a": "0", "b": "1", "similarity": 0.9}])
    assert len({(round(x, 3), round(y, 3)) for x, y in pos.values()}) == 3
    assert all(-1.001 <= v <= 1.001 for p in pos.values() for v in p)
    monkeypatch.setitem(sys.modules, "networkx", None)  # "not installed"
    assert layout(["0", "1", "2"], []) == circular(["0", "1", "2"])


def test_no_grounded_proposal_shows_the_representative():
    class Proposer:
        def propose_merge(self, stories, include_rejected=False, same_need=False):
            return []

    found = grounded(Proposer(), [], same_need=False)
    assert (found.to_json(), found.kind) == (None, "none")
    assert found.note.startswith(NO_PROPOSAL + ": ")  # and says why
    from storytransformer.report.page import _clusters

    html = _clusters([CLUSTER], {"ranked_by": None})
    assert "Representative:" in html and "As a user, I want to log in." in html and NO_PROPOSAL in html
    assert "Proposed merge" not in html


def test_a_bundle_both_stories_ask_is_merged_into_one_story_per_action_on_the_page():
    from storytransformer.config import Config, EngineConfig
    from storytransformer.engine.proposer import Proposer
    from storytransformer.formats import read_source
    from storytransformer.report.page import _clusters

    stories = read_source("a.txt", "As a user, I want to view and update the stock list.\n"
                                   "As a user, I want to view and update the stock list.\n").stories
    found = grounded(Proposer(Config(engine=EngineConfig(generate=False))), stories, same_need=True)
    merge = found.to_json()
    assert found.kind == "deterministic" and merge["text"] == (
        "As a user, I want to view the stock list.\nAs a user, I want to update the stock list.")
    html = _clusters([{**CLUSTER, "merge": merge, "merge_note": ""}], {"ranked_by": None})
    assert "Proposed merge into 2 stories, one per action" in html
    assert "I want to view the stock list.<br>As a user, I want to update the stock list." in html


@pytest.fixture(scope="module")
def examples_report(tmp_path_factory):
    """A report of the examples with the embedding model and the packaged language model."""
    from .conftest import EXAMPLES

    tmp = tmp_path_factory.mktemp("clusters")
    out, data = tmp / "r.html", tmp / "r.json"
    r = run_cli("report", str(EXAMPLES), "-o", str(out), "--no-estimate", "--json", str(data), "--model-seconds", "900")
    assert r.returncode == 0, r.stderr
    return json.loads(data.read_text("utf-8")), out.read_text("utf-8"), r.stderr


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def test_clusters_and_ranked_grounded_merges(examples_report):
    data, html, stderr = examples_report
    assert data["semantic"] is True, stderr
    assert len(data["clusters"]) >= 2
    assert data["merges"]["ranked_by"], stderr  # the packaged model ranked the candidates
    pairs = {frozenset(s["story_id"] for s in c["stories"]) for c in data["clusters"]}
    assert any({"US-1", "US-6"} <= p for p in pairs) and any({"US-2", "LIB-21"} <= p for p in pairs)
    for c in data["clusters"]:
        assert c["representative"] in {s["story_id"] for s in c["stories"]}
        assert c["edges"], c["id"]
        if c["merge"] is None:
            assert c["merge_note"].startswith(NO_PROPOSAL)
            continue
        assert c["merge"]["score"] is not None and c["merge"]["ranked"]  # by the model's log-likelihood
        assert words(c["merge"]["text"]) <= set().union(*(words(s["text"]) for s in c["stories"])) | {"a", "an", "i", "to", "and"}  # "and" joins the ends of both
    assert html.count('<svg class="cluster-graph"') == len(data["clusters"])
    assert any(f["code"] in ("ST603", "ST604") or f["code"].startswith("ST60") for f in data["findings"])


def test_no_model_gives_unranked_grounded_merges(tmp_path):
    from .conftest import EXAMPLES

    data_file = tmp_path / "r.json"
    r = run_cli("report", str(EXAMPLES), "-o", str(tmp_path / "r.html"), "--no-estimate", "--no-model",
                "--json", str(data_file))
    assert r.returncode == 0, r.stderr
    data = json.loads(data_file.read_text("utf-8"))
    assert data["merges"] == {"ranked_by": None, "generated": False}
    assert all(c["merge"] is None or c["merge"]["score"] is None for c in data["clusters"])
    assert any(c["merge"] for c in data["clusters"])


def test_model_time_budget_leaves_later_merges_unranked(tmp_path):
    from .conftest import EXAMPLES

    data_file = tmp_path / "r.json"
    r = run_cli("report", str(EXAMPLES), "-o", str(tmp_path / "r.html"), "--no-estimate", "--model-seconds", "0",
                "--json", str(data_file))
    assert r.returncode == 0, r.stderr
    data = json.loads(data_file.read_text("utf-8"))
    assert data["merges"]["ranked_by"]  # the model loaded...
    merges = [c["merge"] for c in data["clusters"] if c["merge"]]
    assert merges and not any(m["ranked"] for m in merges)  # ...but had no time to rank
    assert any("--model-seconds" in n for n in data["notes"])


def test_page_without_matplotlib_says_why_there_are_no_charts(monkeypatch):
    from storytransformer.report.page import _charts

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    html = _charts({"rules": [], "files": []})
    assert "need matplotlib" in html and "<svg" not in html

"""Semantic findings (ST603-ST605) over a real workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from storytransformer.config import Config
from storytransformer.rules import RULES
from storytransformer.similarity import semantic_findings
from storytransformer.workspace import Workspace

from .helpers import story_at

pytestmark = pytest.mark.slow


def test_rules_are_declared():
    assert RULES["ST603"].criterion == "unique" and RULES["ST603"].scope == "semantic"
    assert not RULES["ST604"].default_on and not RULES["ST605"].default_on  # measured too imprecise to be on


@pytest.fixture(scope="module")
def workspace(subset_dir, tmp_path_factory):
    """The subset plus a file repeating one story word for word (an exact duplicate for the core)."""
    d = tmp_path_factory.mktemp("ws")
    for f in subset_dir.iterdir():
        (d / f.name).write_text(f.read_text("utf-8"), "utf-8")
    first = (subset_dir / "g14-datahub.txt").read_text("utf-8").splitlines()[21]
    (d / "copy.txt").write_text(first + "\n", "utf-8")
    return Workspace.from_paths([str(d)], Config())


@pytest.fixture(scope="module")
def findings(workspace, embedder):
    return semantic_findings(workspace, workspace.config)


def test_paraphrase_gets_a_semantic_duplicate_finding(workspace, findings):
    a, b = story_at(workspace, "g14-datahub.txt", 17), story_at(workspace, "g14-datahub.txt", 18)
    mine = [f for f in findings if f.story_id == a.id and f.code in ("ST603", "ST604")]
    assert mine, "labelled paraphrase has no semantic finding"
    related = {r.story_id for f in mine for r in f.related}
    assert b.id in related
    f = mine[0]
    assert f.file == a.file and f.range == a.range and f.criterion == "unique"
    assert any(ch.isdigit() for ch in f.message) and "similarity" in f.related[0].message
    assert 0 < f.data["similarity"] <= 1


def test_one_finding_per_story_and_code(findings):
    keys = [(f.file, f.story_id, f.code) for f in findings]
    assert len(keys) == len(set(keys))


def test_exact_duplicates_are_left_to_the_core(workspace, findings):
    copy = next(s for s in workspace.stories() if Path(s.file).name == "copy.txt")
    original = story_at(workspace, "g14-datahub.txt", 22)
    for f in findings:
        if f.story_id in (copy.id, original.id):
            assert all(r.story_id not in (copy.id, original.id) for r in f.related)


def test_default_off_rule_and_select(workspace, embedder):
    assert not any(f.code == "ST605" for f in semantic_findings(workspace, workspace.config))
    cfg = Config(select=["ST605"])
    cfg.similarity.whole_threshold = 0.6  # the subset has few near-identical stories for two roles
    ws = Workspace(cfg)
    ws.files, ws.by_text = workspace.files, workspace.by_text
    only = semantic_findings(ws, cfg)
    assert only and {f.code for f in only} == {"ST605"}


def test_paths_limit_the_findings(workspace, findings):
    path = next(p for p in workspace.files if Path(p).name == "g28-zooniverse.txt")
    some = semantic_findings(workspace, workspace.config, paths=[path])
    assert some and {f.file for f in some} == {path}
    assert some == [f for f in findings if f.file == path]


def test_suppression_comment_is_respected(workspace, embedder, tmp_path):
    text = (Path(next(p for p in workspace.files if Path(p).name == "g14-datahub.txt"))).read_text("utf-8")
    lines = text.splitlines()
    lines.insert(16, "# storytransformer: ignore ST603 ST604")
    ws = Workspace(Config())
    ws.set_text(str(tmp_path / "g14.txt"), "\n".join(lines) + "\n")
    found = semantic_findings(ws, ws.config)
    suppressed = story_at(ws, "g14.txt", 18)
    assert not any(f.story_id == suppressed.id for f in found)
    assert found  # the others still report


def test_a_second_call_reuses_the_index_and_sees_edits(real_backlogs, embedder, tmp_path):
    from storytransformer.similarity import workspace_findings as module

    lines = (real_backlogs / "g14-datahub.txt").read_text("utf-8").splitlines()
    path = str(tmp_path / "pair.txt")
    ws = Workspace(Config())
    ws.set_text(path, f"{lines[16]}\n{lines[17]}\n")  # a labelled paraphrase pair
    first = semantic_findings(ws, ws.config)
    assert {f.code for f in first} & {"ST603", "ST604"} and len(first) == 2
    index = module._INDEXES[ws][1]
    ws.set_text(path, f"{lines[16]}\n{(real_backlogs / 'g13-planningpoker.txt').read_text('utf-8').splitlines()[0]}\n")
    assert semantic_findings(ws, ws.config) == []
    assert module._INDEXES[ws][1] is index and len(index) == 2


def test_messages_name_the_other_story_by_file_and_line(findings):
    semantic = [f for f in findings if f.code == "ST603"]
    assert semantic
    for f in semantic:
        other = f.related[0]
        assert f"{other.file}:{other.range.start.line + 1}" in f.message, f.message

"""The one check entry point (storytransformer.checking): its fix policy levels, the one place that
resolves overlapping fixes, the same findings as the CLI, and stories named by file:line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from storytransformer.checking import (CHECK_FIX, ON_SAVE, CheckOptions, FixPolicy, check, fix_kind_of, fix_text,
                                       is_merge_candidate)
from storytransformer.config import Config
from storytransformer.edits import choose_fixes
from storytransformer.findings import Fix, TextEdit
from storytransformer.lint import Linter
from storytransformer.places import relative_path, story_place
from storytransformer.rules import RULES, FixKind, merge_candidate_codes
from storytransformer.story import Position, Range
from storytransformer.workspace import Workspace

from .helpers import lint_texts

ROOT = Path(__file__).resolve().parents[2]
DUP = "As a member, I want to renew a loan, so that I keep the book.\n"
NOTE = "As an editor, I want to add new titles (see the old form), so that the catalogue stays current.\n"
SPLIT = "As an editor, I want to add and edit articles, so that the site is current.\n"
INTERNAL_ID = re.compile(r"\b[\w.-]+-[0-9a-f]{8}\b")  # what the readers make up: backlog-142-fa99141a


def cli(*args, cwd: Path):
    env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(cwd / ".cache-test"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


# -- the fix kind and merge candidacy are declared on the rule -----------------------------------
def test_every_rule_declares_one_fix_kind_consistent_with_fixable():
    for code, rule in RULES.items():
        assert isinstance(rule.fix_kind, FixKind), code
        assert rule.fixable == (rule.fix_kind is not FixKind.NONE), code
        assert rule.unsafe_fix == (rule.fix_kind is FixKind.UNSAFE), code
    assert RULES["ST601"].fix_kind is FixKind.DELETION  # deleting an exact duplicate
    assert RULES["ST201"].fix_kind is FixKind.UNSAFE  # a split changes what the story asks for
    assert RULES["ST301"].fix_kind is FixKind.SAFE  # a note moved out of the sentence
    assert RULES["ST602"].fix_kind is FixKind.NONE


def test_merge_candidates_are_declared_on_the_rules_not_in_code_lists():
    assert merge_candidate_codes() == {"ST601", "ST602", "ST603", "ST604", "ST605", "ST606"}
    assert not any(RULES[c].merge_candidate for c in ("ST101", "ST201", "ST301", "ST701"))
    for path in ("storytransformer/cli/suggest.py", "server/storytransformer_server/lsp/code_actions.py"):
        source = (ROOT / path).read_text("utf-8")
        assert "MERGE_CODES" not in source and '"ST603"' not in source, path


# -- the policy levels ---------------------------------------------------------------------------
def findings_of(text: str):
    _, found = lint_texts({"b.txt": text})
    return found


def by_code(found, code):
    return next(f for f in found if f.code == code and f.fix is not None)


def test_policy_levels_decide_each_kind_of_fix():
    found = findings_of(DUP + NOTE + SPLIT + DUP)
    dup, note, split = by_code(found, "ST601"), by_code(found, "ST301"), by_code(found, "ST201")
    assert [fix_kind_of(f) for f in (dup, note, split)] == [FixKind.DELETION, FixKind.SAFE, FixKind.UNSAFE]
    assert CHECK_FIX.allows(dup) and CHECK_FIX.allows(note) and not CHECK_FIX.allows(split)
    assert ON_SAVE.allows(note) and not ON_SAVE.allows(dup) and not ON_SAVE.allows(split)
    everything = FixPolicy.parse("safe, unsafe ,DELETION")
    assert all(everything.allows(f) for f in (dup, note, split))
    assert CHECK_FIX.with_unsafe().kinds == everything.kinds and CHECK_FIX.with_unsafe(False) == CHECK_FIX
    assert not FixPolicy.parse("").allows(note) and FixPolicy.parse("").describe() == "none"
    without_fix = next(f for f in found if f.fix is None)
    assert fix_kind_of(without_fix) is FixKind.NONE and not everything.allows(without_fix)


def test_a_bad_fix_kind_is_named_with_its_setting():
    with pytest.raises(ValueError, match=r"fixOnSave.kinds: unknown fix kind 'delete'"):
        FixPolicy.parse(["safe", "delete"], "fixOnSave.kinds")


def test_fix_on_save_setting_reaches_the_policy():
    from storytransformer_server.lsp.options import parse_options

    opts, errors = parse_options({"fixOnSave": {"kinds": ["safe", "deletion"]}})
    assert errors == [] and opts.fix_on_save.policy == FixPolicy.of("safe", "deletion")
    opts, errors = parse_options({"fixOnSave": {"kinds": ["safe", "nope"]}})
    assert opts.fix_on_save.policy == ON_SAVE and "fixOnSave.kinds" in errors[0] and "'nope'" in errors[0]
    opts, errors = parse_options({"fixOnSave": {"kinds": "safe"}})
    assert opts.fix_on_save.policy == ON_SAVE and "must be a list" in errors[0]


# -- overlapping fixes: one place, whole lines ---------------------------------------------------
def edit(line: int, start: int, end: int, text: str = "x") -> TextEdit:
    return TextEdit(Range(Position(line, start, start), Position(line, end, end)), text)


def test_overlapping_fixes_are_resolved_by_whole_lines_first_come_first_served():
    a = Fix("a", (edit(0, 0, 4),))
    b = Fix("b", (edit(0, 10, 12),))  # other characters of the same line: computed on the old story, left out
    c = Fix("c", (edit(1, 0, 2),))
    d = Fix("d", (edit(1, 5, 5), edit(2, 0, 1)))  # touches line 1, taken by c
    assert choose_fixes([a, b, c, d]) == [a, c]
    assert choose_fixes([b, a]) == [b]
    assert choose_fixes([a, c], taken_lines=[(0, 0)]) == [c]  # a model rewrite claimed line 0


def test_policy_choose_filters_then_resolves_overlaps():
    found = findings_of(NOTE + DUP + DUP)
    chosen = ON_SAVE.choose(found)
    assert {f.code for f in chosen} == {"ST301"}
    assert {f.code for f in CHECK_FIX.choose(found)} == {"ST301", "ST601"}
    assert CHECK_FIX.choose(found, taken_lines=[(0, 0)])[0].code == "ST601"  # line 0 is taken


def test_fixes_left_out_for_an_overlap_apply_on_a_later_pass():
    ws = Workspace(Config())
    text = DUP + DUP + DUP
    ws.set_text("b.txt", text)
    fixed, applied = fix_text(Linter(ws, use_disk_cache=False), "b.txt", text, CHECK_FIX)
    assert fixed == DUP  # the deletion of line 2 claims line 3 too: the third copy goes in the next pass
    assert [code for code, _ in applied] == ["ST601", "ST601"]



def test_a_story_that_splits_into_a_repeat_of_another_split_is_not_deleted():
    """Splitting both stories makes "pay for it online" twice; "it" is the loans in one and the rooms in
    the other (a pronoun with no noun of its number stays as written). Only a story the user wrote twice
    is deleted: these stay (ST601 still reports them), so no story loses a part."""
    ws = Workspace(Config())
    text = ("As a user, I want to renew loans at the desk and pay for it online.\n"
            "As a user, I want to reserve rooms at the desk and pay for it online.\n")
    ws.set_text("b.txt", text)
    policy = CHECK_FIX.with_unsafe()
    fixed, applied = fix_text(Linter(ws, use_disk_cache=False), "b.txt", text, policy)
    assert [code for code, _ in applied] == ["ST201", "ST201"]
    assert fixed.count("pay for it online") == 2, fixed
    assert len(fixed.splitlines()) == 4
    ws.set_text("b.txt", fixed)
    assert "ST601" in {f.code for f in Linter(ws, use_disk_cache=False).check_file("b.txt")}


def test_a_pronoun_with_a_clear_noun_is_written_out_so_splits_do_not_repeat():
    ws = Workspace(Config())
    text = ("As a user, I want to identify persons in videos, and receive related information about them.\n"
            "As a user, I want to identify products in videos, and receive related information about them.\n")
    ws.set_text("b.txt", text)
    fixed, _ = fix_text(Linter(ws, use_disk_cache=False), "b.txt", text, CHECK_FIX.with_unsafe())
    assert "receive related information about the persons" in fixed
    assert "receive related information about the products" in fixed


# -- one entry point, the same findings as the CLI -----------------------------------------------
@pytest.fixture
def backlog(tmp_path: Path) -> Path:
    (tmp_path / "b.txt").write_text(DUP + NOTE + SPLIT + DUP, "utf-8")
    (tmp_path / "c.md").write_text("# Backlog\n\n- " + NOTE + "- As a visitor, I want to search.\n", "utf-8")
    return tmp_path


def key(row: dict) -> tuple:
    return (row["file"], row["line"], row["column"], row["code"], row["message"])


def test_the_entry_point_gives_the_same_findings_as_the_cli(backlog, monkeypatch):
    r = cli("check", "--no-semantic", "--format", "json", ".", cwd=backlog)
    assert r.returncode == 1, r.stderr
    from_cli = sorted(key(row) for row in json.loads(r.stdout))
    monkeypatch.chdir(backlog)
    result = check(Config(root=str(backlog)), ["."], options=CheckOptions(semantic=False, use_cache=False))
    from storytransformer.output import finding_to_json

    assert sorted(key(finding_to_json(f)) for f in result.findings) == from_cli
    assert result.files == 2 and result.stories == 6 and result.workspace is not None


def test_check_fix_and_the_fix_kinds_flag_use_the_policy(backlog):
    r = cli("check", "--no-semantic", "--fix", "--fix-kinds", "safe", "b.txt", cwd=backlog)
    text = (backlog / "b.txt").read_text("utf-8")
    assert text.count(DUP) == 2 and "(see the old form)" not in text  # safe only: the duplicate stays
    r = cli("check", "--no-semantic", "--fix", "b.txt", cwd=backlog)  # default: safe + deletion
    text = (backlog / "b.txt").read_text("utf-8")
    assert text.count(DUP) == 1 and SPLIT in text
    r = cli("check", "--no-semantic", "--fix", "--fix-kinds", "unsafe", "b.txt", cwd=backlog)
    assert SPLIT not in (backlog / "b.txt").read_text("utf-8")
    r = cli("check", "--no-semantic", "--fix", "--fix-kinds", "safe,everything", "b.txt", cwd=backlog)
    assert r.returncode == 2 and "--fix-kinds: unknown fix kind 'everything'" in r.stderr


def test_the_entry_point_fixes_given_texts_without_writing(tmp_path):
    result = check(Config(root=str(tmp_path)), [], {"stdin.txt": (DUP + DUP).encode()},
                   CheckOptions(semantic=False, use_cache=False, fix=ON_SAVE))
    assert result.fixed == [] and sum(f.code == "ST601" for f in result.findings) == 2  # each names the other
    result = check(Config(root=str(tmp_path)), [], {"stdin.txt": DUP + DUP},
                   CheckOptions(semantic=False, use_cache=False, fix=CHECK_FIX))
    (done,) = result.fixed
    assert done.after == DUP and done.applied == [("ST601", "Delete this duplicate story")]
    assert not (tmp_path / "stdin.txt").exists()


def test_a_broken_embedding_model_is_a_warning_not_a_failure(tmp_path, monkeypatch):
    import storytransformer.similarity as similarity

    def broken(*args, **kwargs):
        raise RuntimeError("no model files")

    monkeypatch.setattr(similarity, "semantic_findings", broken)
    said = []
    (tmp_path / "b.txt").write_text(DUP + DUP, "utf-8")
    result = check(Config(root=str(tmp_path)), [str(tmp_path)], options=CheckOptions(use_cache=False),
                   say=lambda level, message: said.append((level, message)))
    assert said == [("warning", "semantic check skipped: no model files")]
    assert {f.code for f in result.findings} == {"ST601"}


# -- stories named by file:line relative to the workspace, never by internal ids -----------------
def test_places_are_relative_to_the_workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert relative_path(str(tmp_path / "sub" / "b.txt")) == os.path.join("sub", "b.txt")
    elsewhere = tmp_path.parent / "elsewhere.txt"
    assert relative_path(str(elsewhere)) == str(elsewhere)  # outside the current directory and the root
    assert relative_path(str(elsewhere), str(tmp_path.parent)) == "elsewhere.txt"
    ws, _ = lint_texts({str(tmp_path / "b.md"): "- US-12: " + DUP + "- US-13: " + DUP})
    first = next(s for s in ws.stories())
    assert first.explicit_id and story_place(first) == "US-12 at b.md:1"


def test_duplicate_messages_name_the_other_story_by_relative_file_line(backlog):
    r = cli("check", "--no-semantic", "--format", "json", str(backlog), cwd=backlog)
    rows = [row for row in json.loads(r.stdout) if row["code"] == "ST601"]
    assert rows and all(str(backlog) not in row["message"] for row in rows)
    later = next(row for row in rows if row["line"] == 4)
    assert later["message"] == "Duplicate: the same story as b.txt:1; delete one of them"
    assert later["related"][0]["message"] == "Duplicate: the same story (b.txt:1)"
    for row in json.loads(r.stdout):
        assert not INTERNAL_ID.search(row["message"]), row["message"]
        assert not any(INTERNAL_ID.search(x["message"]) for x in row["related"]), row


def test_suggest_names_the_stories_of_a_proposal_by_file_line():
    from storytransformer.cli.suggest import _text

    proposal = {"kind": "merge", "source_ids": ["b-0-fa99141a", "b-3-3aa1c3cc"], "origin": "fix", "score": None,
                "accepted": True, "stories": ["As a member, I want to renew a loan."],
                "provenance": {"1.means": "b-0-fa99141a", "*": "b-0-fa99141a+b-3-3aa1c3cc"},
                "grounding": {"reasons": []},
                "sources": [{"id": "b-0-fa99141a", "file": "b.txt", "line": 1, "place": "b.txt:1", "text": DUP},
                            {"id": "b-3-3aa1c3cc", "file": "b.txt", "line": 4, "place": "b.txt:4", "text": DUP}]}
    out = _text([proposal])
    assert out.splitlines()[0] == "b.txt:1: merge of b.txt:1, b.txt:4 [fix]"
    assert "1.means <- b.txt:1" in out and "* <- b.txt:1+b.txt:4" in out
    assert not INTERNAL_ID.search(out)


def test_the_report_page_shows_places_not_internal_ids(backlog, monkeypatch):
    from storytransformer.report.collect import Options, build_report
    from storytransformer.report.page import _clusters, _findings

    monkeypatch.chdir(backlog)
    data = build_report(["."], Config(root=str(backlog)), Options(semantic=False, model=False, estimate=False,
                                                                   use_cache=False))
    assert data["findings"] and all(row["story_id"] for row in data["findings"])  # kept as compare's key
    html = _findings(data["findings"])
    assert "b.txt:4" in html and not INTERNAL_ID.search(html)
    cluster = {"id": "C1", "size": 2, "cohesion": 1.0, "representative": "b-0-fa99141a", "edges": [],
               "merge": None, "merge_note": "none",
               "stories": [{"story_id": "b-0-fa99141a", "story_label": None, "file": "b.txt", "line": 1, "text": DUP},
                           {"story_id": "x-1-3aa1c3cc", "story_label": "US-7", "file": "c.md", "line": 3,
                            "text": NOTE}]}
    html = _clusters([cluster], {"ranked_by": None})
    assert "b.txt:1" in html and "US-7" in html and not INTERNAL_ID.search(html)

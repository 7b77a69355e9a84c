"""The CI habits users bring from ruff, through the real CLI on real files: baselines, GitHub
annotations, GitLab Code Quality and JUnit reports, --diff and --show-fixes, standard input, the pre-commit
hook and the GitHub Action."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from storytransformer.output import github_data, github_property

ROOT = Path(__file__).resolve().parents[2]

RENEW = "As a member, I want to renew a loan, so that I keep the book.\n"
NOTE = "As a member, I want to see my loans (last two years), so that I remember.\n"
VAGUE = "As a user, I want a fast, user-friendly search, so that I find books.\n"
NEW_VAGUE = "As an admin, I want a simple report, so that I see the loans.\n"


def run(*args, cwd, stdin: str | bytes | None = None, env=None):
    e = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(Path(cwd) / ".cache-test"), **(env or {})}
    data = stdin.encode() if isinstance(stdin, str) else stdin
    r = subprocess.run([sys.executable, "-m", "storytransformer", *args], input=data, capture_output=True,
                       cwd=cwd, env=e, timeout=300)
    r.stdout, r.stderr = r.stdout.decode(), r.stderr.decode()
    return r


def check_json(*args, cwd, **kw):
    r = run("check", "--no-semantic", "--format", "json", *args, cwd=cwd, **kw)
    return r, json.loads(r.stdout or "[]")


# -- baseline ---------------------------------------------------------------


def test_baseline_survives_moving_a_story_and_flags_a_new_one(tmp_path):
    backlog = tmp_path / "backlog.txt"
    backlog.write_text(RENEW + NOTE + VAGUE)
    r = run("check", "--no-semantic", "--write-baseline", "baseline.json", ".", cwd=tmp_path)
    assert r.returncode == 0, r.stderr  # the findings are now accepted
    written = (tmp_path / "baseline.json").read_text()
    data = json.loads(written)
    assert data["version"] == 1 and data["tool"] == "storytransformer"
    assert [(e["code"], e["key"]) for e in data["findings"]] == [
        ("ST301", "last two years"),
        ("ST701", "fast"), ("ST701", "user friendly")]
    assert "backlog.txt" not in written and '"line"' not in written  # nothing that moves

    # The same findings without a baseline fail the run ...
    assert run("check", "--no-semantic", ".", cwd=tmp_path).returncode == 1
    # ... and pass with it, after moving the stories (another order, a story inserted above them,
    # another story edited, a heading) and into another file.
    backlog.write_text("As a librarian, I want to add books, so that members can find them.\n" + VAGUE + RENEW)
    (tmp_path / "more.txt").write_text(NOTE)
    r = run("check", "--no-semantic", "--baseline", "baseline.json", ".", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "" and "3 more are in the baseline" in r.stderr

    # A new story with a problem is reported, and only it.
    with backlog.open("a") as f:
        f.write(NEW_VAGUE)
    r, found = check_json("--baseline", "baseline.json", ".", cwd=tmp_path)
    assert r.returncode == 1
    assert [(f["code"], f["file"], f["line"]) for f in found] == [("ST701", "backlog.txt", 4)]
    assert "'simple'" in found[0]["message"]

    # A fixed finding leaves the baseline harmlessly; a new copy of a baselined story is new.
    (tmp_path / "more.txt").write_text(RENEW.replace("renew a loan", "pay a fine"))
    backlog.write_text(VAGUE + VAGUE.replace("books.", "books."))
    r, found = check_json("--baseline", "baseline.json", ".", cwd=tmp_path)
    assert r.returncode == 1
    assert sorted((f["code"], f["line"]) for f in found) == [("ST601", 1), ("ST601", 2), ("ST701", 2), ("ST701", 2)]


def test_rewriting_a_baseline_is_stable(tmp_path):
    (tmp_path / "b.txt").write_text(VAGUE + NOTE)
    run("check", "--no-semantic", "--write-baseline", "one.json", ".", cwd=tmp_path)
    (tmp_path / "b.txt").write_text(NOTE + "\n\n" + VAGUE)
    run("check", "--no-semantic", "--write-baseline", "two.json", ".", cwd=tmp_path)
    assert (tmp_path / "one.json").read_bytes() == (tmp_path / "two.json").read_bytes()


@pytest.mark.parametrize("content, why", [
    ("{", "invalid JSON"),
    ('{"tool": "storytransformer", "version": 99, "findings": []}', "version 99"),
    ('{"tool": "storytransformer", "version": 1, "findings": [{"code": 1}]}', "entry 1"),
    ('[]', "not a storytransformer baseline"),
    (None, "cannot read"),
])
def test_a_bad_baseline_is_a_clear_error(tmp_path, content, why):
    (tmp_path / "b.txt").write_text(NOTE)
    if content is not None:
        (tmp_path / "old-baseline.json").write_text(content)
    r = run("check", "--no-semantic", "--baseline", "old-baseline.json", ".", cwd=tmp_path)
    assert r.returncode == 2
    assert "old-baseline.json" in r.stderr and why in r.stderr and "Traceback" not in r.stderr


# -- GitHub annotations --------------------------------------------------------


def test_github_format_escapes_messages_and_properties(tmp_path):
    (tmp_path / "a,b:c%.txt").write_text(
        "As a member, I want to see my loans (99% of them), so that I remember.\n"
        "As a member, I want a red button, so that I can renew a loan.\n")
    (tmp_path / "broken.txt").write_bytes(b"As a member, I want \xff\n")
    r = run("check", "--no-semantic", "--format", "github", ".", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    assert ("::warning file=a%2Cb%3Ac%25.txt,line=1,col=37,endLine=1,endColumn=50,title=ST301::"
            "Not minimal: the bracketed text (99%25 of them) is a note, not part of the story") in lines
    notice = next(x for x in lines if "title=ST801" in x)  # an info finding is a notice
    assert notice.startswith("::notice file=a%2Cb%3Ac%25.txt,line=2,")
    assert any(x.startswith("::error file=broken.txt,line=1::invalid UTF-8") for x in lines)
    assert all(x.startswith("::") and x.count("::") == 2 for x in lines)


def test_github_escaping_follows_the_toolkit():
    assert github_data("100%\r\nnext: a, b") == "100%25%0D%0Anext: a, b"
    assert github_property("a%b\r\n:c,d") == "a%25b%0D%0A%3Ac%2Cd"


# -- --diff and --show-fixes ------------------------------------------------------


def test_diff_writes_nothing_and_shows_the_change(tmp_path):
    story = tmp_path / "b.txt"
    story.write_text(RENEW + NOTE)
    before = story.stat()
    r = run("check", "--no-semantic", "--diff", "--show-fixes", ".", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines() == [
        "--- b.txt", "+++ b.txt", "@@ -1,2 +1,3 @@", " " + RENEW.rstrip(),
        "-" + NOTE.rstrip(), "+As a member, I want to see my loans, so that I remember.", "+# Note: last two years"]
    assert story.read_text() == RENEW + NOTE and story.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".cache")) == ["b.txt"]
    assert "Would fix 1 problem:\n- b.txt:\n    1 × ST301 (Move the bracketed text into a note)" in r.stderr

    story.write_text(RENEW)
    r = run("check", "--no-semantic", "--diff", ".", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == "" and "No fixes would be applied." in r.stderr


def test_show_fixes_lists_what_fix_applied(tmp_path):
    (tmp_path / "b.txt").write_text(RENEW + NOTE)
    r = run("check", "--no-semantic", "--fix", "--show-fixes", ".", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Fixed 1 problem:\n- b.txt:\n    1 × ST301 (Move the bracketed text into a note)" in r.stdout
    assert (tmp_path / "b.txt").read_text().endswith("# Note: last two years\n")


# -- standard input ------------------------------------------------------------------


def test_stdin_takes_its_name_and_format_from_stdin_filename(tmp_path):
    markdown = "# Loans\n\n- As a member, I want to see my loans (last two years), so that I remember.\n"
    r, found = check_json("-", "--stdin-filename", "backlog.md", cwd=tmp_path, stdin=markdown)
    assert r.returncode == 1
    # Read as Markdown: the list bullet is not part of the story, so nothing but the bracket is wrong.
    assert [(f["code"], f["file"], f["line"], f["column"]) for f in found] == [("ST301", "backlog.md", 3, 39)]
    r, found = check_json("-", cwd=tmp_path, stdin=markdown)  # no name: plain text, named "-"
    assert {f["file"] for f in found} == {"-"} and "ST101" in {f["code"] for f in found}


def test_fix_stdin_prints_the_fixed_text_and_writes_no_file(tmp_path):
    on_disk = tmp_path / "backlog.md"
    on_disk.write_text("- As a member, I want to pay a fine, so that I can borrow again.\n")
    markdown = "# Loans\n\n- As a member, I want to see my loans (last two years), so that I remember.\n"
    r = run("check", "--no-semantic", "--fix", "--show-fixes", "-", "--stdin-filename", "backlog.md",
            cwd=tmp_path, stdin=markdown)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "# Loans\n\n- As a member, I want to see my loans, so that I remember.\n  - Note: last two years\n"
    assert "1 × ST301" in r.stderr and "No problems in 1 story" in r.stderr
    assert on_disk.read_text() == "- As a member, I want to pay a fine, so that I can borrow again.\n"

    clean = "As a member, I want to renew a loan, so that I keep the book.\n"
    r = run("check", "--no-semantic", "--fix", "-", cwd=tmp_path, stdin=clean)
    assert r.returncode == 0 and r.stdout == clean


def test_stdin_with_files_and_its_diff(tmp_path):
    (tmp_path / "b.txt").write_text(RENEW)
    r = run("check", "--no-semantic", "--diff", "-", "b.txt", "--stdin-filename", "new.txt", cwd=tmp_path, stdin=RENEW + NOTE)
    assert r.returncode == 1
    assert r.stdout.startswith("--- new.txt\n+++ new.txt\n") and not (tmp_path / "new.txt").exists()
    r = run("check", "--no-semantic", "--stdin-filename", "x.md", "b.txt", cwd=tmp_path)
    assert r.returncode == 2 and "--stdin-filename" in r.stderr


# -- pre-commit and the GitHub Action ------------------------------------------------


def test_pre_commit_hook_and_action_are_declared():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "storytransformer-check")
    assert hook["entry"] == "storytransformer check" and hook["language"] == "python"
    import re

    wanted = re.compile(hook["files"])
    assert all(wanted.search(n) for n in ("a.txt", "docs/b.md", "c.feature", "d.csv"))
    assert not wanted.search("setup.py")

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite" and set(action["inputs"]) >= {"paths", "args", "sarif"}
    steps = action["runs"]["steps"]
    assert any("pip install" in s.get("run", "") for s in steps)
    assert any("storytransformer check --format github" in s.get("run", "") for s in steps)
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert "inputs.sarif" in upload["if"]


CORE_DISTRIBUTIONS = ("msgpack", "platformdirs", "rich", "markdown-it-py", "mdurl", "pygments", "setuptools")


def _offline_site(target: Path) -> Path:
    """A directory holding (links to) the installed core dependencies and setuptools, and nothing else.

    On PYTHONPATH it lets pip in pre-commit's own virtualenv build and install the hook with
    no package index: the requirements are already there, so nothing is downloaded.
    """
    target.mkdir()
    for name in CORE_DISTRIBUTIONS:
        dist = importlib.metadata.distribution(name)
        for f in dist.files or ():
            top = f.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            src = Path(dist.locate_file(top))
            if src.exists() and not (target / top).exists():
                (target / top).symlink_to(src)
    return target


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_pre_commit_runs_the_hook_from_this_repository_offline(tmp_path):
    """``pre-commit try-repo`` with this repository: pre-commit clones it (with uncommitted changes),
    installs it into its own virtualenv with pip, no index, and runs the hook on a real git repository."""
    pytest.importorskip("pre_commit")
    project = tmp_path / "project"
    project.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    (project / "backlog.txt").write_text(RENEW + NOTE)
    (project / "clean.md").write_text("- " + RENEW)
    (project / "setup.py").write_text("print('not a story')\n")
    subprocess.run([*git, "add", "."], cwd=project, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUALENV_", "PRE_COMMIT"))}
    env.update(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"), PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull,
               PIP_NO_BUILD_ISOLATION="0",  # (sic) pip reads this as "build isolation: no"
               PYTHONPATH=str(_offline_site(tmp_path / "site")),
               STORYTRANSFORMER_CACHE_DIR=str(tmp_path / "cache"))

    def try_repo(*files):
        return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "storytransformer-check",
                               "--files", *files], cwd=project, env=env, capture_output=True, text=True, timeout=600)

    r = try_repo("backlog.txt", "clean.md", "setup.py")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "storytransformer check" in r.stdout and "Failed" in r.stdout
    assert "backlog.txt:2:37: ST301 Not minimal" in r.stdout
    assert "setup.py" not in r.stdout  # not a story file: pre-commit does not pass it
    assert "1 story in 1 file" not in r.stdout and "in 2 files" in r.stdout

    r = try_repo("clean.md", "setup.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Passed" in r.stdout


# -- GitLab Code Quality and JUnit reports ------------------------------------------


def test_gitlab_code_quality_report_keeps_a_moved_story_s_fingerprint(tmp_path):
    stories = ("As a member, I want to see my loans (last two years), so that I remember.\n"
               "As a member, I want to renew a loan, so that I keep the book.\n"
               "As a member, I want to renew a loan, so that I keep the book.\n")
    (tmp_path / "backlog.stories.txt").write_text(stories)
    (tmp_path / "broken.stories.txt").write_bytes(b"\xff\xfe not UTF-8\n")

    def report() -> list[dict]:
        r = run("check", "--no-semantic", "--format", "gitlab", ".", cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        return json.loads(r.stdout)

    before = report()
    for issue in before:
        assert {"type", "check_name", "description", "severity", "fingerprint", "location"} <= issue.keys()
        assert issue["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert not Path(issue["location"]["path"]).is_absolute()
    assert len({i["fingerprint"] for i in before}) == len(before)  # the two copies are two issues
    assert {"ST301", "ST601", "storytransformer/error"} <= {i["check_name"] for i in before}
    assert any(i["location"] == {"path": "backlog.stories.txt", "lines": {"begin": 1, "end": 1}} for i in before)
    # a story inserted above moves every line; each issue keeps its fingerprint
    (tmp_path / "backlog.stories.txt").write_text("As a member, I want to pay a fine online.\n" + stories)
    after = report()
    moved = {i["fingerprint"]: i["location"]["lines"]["begin"] for i in after}
    for issue in before:
        if issue["location"]["path"] == "backlog.stories.txt":
            assert moved[issue["fingerprint"]] == issue["location"]["lines"]["begin"] + 1


def test_junit_report_has_a_failing_case_per_finding_and_stays_valid_xml(tmp_path):
    from xml.etree import ElementTree as ET

    (tmp_path / "backlog.stories.txt").write_text(
        "As a member, I want to see my loans (last \x0c two years), so that I remember.\n"
        "As a member, I want to search fast, so that I find a book & a <map>.\n")
    (tmp_path / "broken.stories.txt").write_bytes(b"\xff\xfe not UTF-8\n")
    r = run("check", "--no-semantic", "--format", "junit", ".", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    root = ET.fromstring(r.stdout)  # parses: the form feed is written as text, not as the raw character
    assert "last \\x0c two years" in r.stdout
    cases = [(suite.get("name"), case.get("name"), case.get("classname"))
             for suite in root for case in suite if case.find("failure") is not None]
    assert ("backlog.stories.txt", "ST301", "backlog.stories.txt:1:37") in cases
    assert any(name == "ST701" and where.startswith("backlog.stories.txt:2:") for _, name, where in cases)
    assert ("broken.stories.txt", "storytransformer/error", "broken.stories.txt:1") in cases
    assert root.get("tests") == root.get("failures") == str(len(cases))
    (tmp_path / "broken.stories.txt").unlink()
    (tmp_path / "backlog.stories.txt").write_text("As a member, I want to renew a loan, so that I keep the book.\n")
    clean = run("check", "--no-semantic", "--format", "junit", ".", cwd=tmp_path)
    assert clean.returncode == 0 and ET.fromstring(clean.stdout).get("tests") == "0"

"""A second real LSP client: Neovim (0.7+, headless) drives `storytransformer lsp`.

Needs ``nvim`` (``scripts/test-tools.d/20-neovim.sh`` installs Debian's package).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPT = HERE / "neovim" / "lsp_check.lua"
CONFIG = ROOT / "docs" / "editors" / "storytransformer.lua"  # the configuration docs/lsp.md includes

STORIES = """\
As a visitor, I want to search the catalogue, so that I can find a book.
I want to export the monthly report, so that I can share it with the board.
As a librarian, I want to add new titles (see the old form), so that the catalogue stays current.
As a visitor, I want to search the catalogue, so that I can find a book.
"""

pytestmark = pytest.mark.slow


def run_neovim(root: Path, file: Path, fix_line: int = -1, hover: str = "", complete: str = "",
               wait_code: str = "", action: str = "", symbols: bool = False, rename: str = "") -> dict:
    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.skip("nvim not installed (scripts/test-tools.d/20-neovim.sh installs it)")
    out = root / "nvim-result.json"
    runtime = tempfile.mkdtemp(prefix="st-nvim-")
    env = {**os.environ, "ST_PYTHON": sys.executable, "ST_ROOT": str(root), "ST_FILE": str(file), "ST_CONFIG": str(CONFIG),
           "ST_OUT": str(out), "ST_FIX_LINE": str(fix_line), "ST_WAIT_CODE": wait_code, "ST_ACTION": action,
           "ST_HOVER": hover, "ST_COMPLETE": complete, "ST_SYMBOLS": "1" if symbols else "", "ST_RENAME": rename, "XDG_RUNTIME_DIR": runtime, "HF_HUB_OFFLINE": "1",
           "XDG_CONFIG_HOME": runtime, "XDG_DATA_HOME": runtime, "XDG_STATE_HOME": runtime,
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([nvim, "--headless", "--clean", "-n", "-c", f"luafile {SCRIPT}"], env=env, cwd=root,
                          capture_output=True, text=True, timeout=180)
    assert out.exists(), f"neovim wrote no result (exit {proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(out.read_text("utf-8"))
    assert "error" not in result, result["error"]
    return result


def test_neovim_shows_diagnostics_and_applies_a_quick_fix(tmp_path):
    story_file = tmp_path / "stories.txt"
    story_file.write_text(STORIES, "utf-8")
    # the story-local findings show first (while the scan runs); the duplicate comes with the full check
    result = run_neovim(tmp_path, story_file, fix_line=2, wait_code="ST601")
    assert result["client_started"] and result["got_diagnostics"] and result["filetype"] == "text"
    by_code = {}
    for d in result["before"]:
        by_code.setdefault(d["code"], []).append(d)
    assert [d["line"] for d in by_code["ST101"]] == [1]  # no role
    assert all(d["source"] == "storytransformer" for d in result["before"])
    dup = next(d for d in by_code["ST601"] if d["line"] == 3)  # exact duplicate of line 0
    assert [(Path(r["uri"].removeprefix("file://")).name, r["line"]) for r in dup["related"]] == [("stories.txt", 0)]
    bracket = by_code["ST301"][0]
    line = STORIES.splitlines()[2]
    assert line[bracket["col"]:bracket["end_col"]].startswith("(see the old form")
    # the quick fix, applied by Neovim itself, and the diagnostics that follow the edit
    assert result["fixed_line"] == "As a librarian, I want to add new titles, so that the catalogue stays current."
    assert result["fix_cleared"]
    assert "ST101" in {d["code"] for d in result["after"]}


def test_neovim_ignores_a_finding_for_one_story_with_the_code_action(tmp_path):
    story_file = tmp_path / "stories.txt"
    story_file.write_text(STORIES, "utf-8")
    result = run_neovim(tmp_path, story_file, fix_line=2, action="Ignore ST301 for this story")
    assert "Ignore ST301 for this story" in result["actions"] and "Ignore ST301 in this file" in result["actions"]
    assert "storytransformer: ignore ST301" in result["fixed_line"]  # the comment, in the plain-text syntax
    assert result["fix_cleared"]  # the finding is gone once the edit is checked
    assert "ST101" in {d["code"] for d in result["after"]}  # the other stories' findings stay


def test_neovim_on_a_real_backlog(real_backlogs, tmp_path):
    from storytransformer.rules import RULES

    source = sorted(real_backlogs.glob("*.txt"))[0]
    target = tmp_path / source.name
    target.write_bytes(source.read_bytes())  # a temporary copy, so the server's workspace is just this file
    result = run_neovim(tmp_path, target)
    assert result["got_diagnostics"]
    lines = target.read_text("utf-8").splitlines()
    assert result["before"] and all(d["code"] in RULES for d in result["before"])
    assert all(0 <= d["line"] < len(lines) for d in result["before"])


def test_neovim_shows_a_hover_and_completes_a_role(tmp_path):
    story_file = tmp_path / "stories.txt"
    story_file.write_text(STORIES + "As a librarian, I want to retire old titles, so that the shelves have room.\n", "utf-8")
    line = STORIES.splitlines()[2]
    result = run_neovim(tmp_path, story_file, hover=f"2:{line.index('(see') + 2}", complete="As a li")
    assert result["got_diagnostics"]
    hover = "\n".join(result["hover_lines"])
    assert "**ST301 bracketed-text**" in hover and "**Why it matters**" in hover and "**Example:**" in hover
    assert result["completions"][0] == "librarian, I want to "


def test_neovim_lists_the_outline_and_renames_a_story_id_in_this_file_and_another(tmp_path):
    story_file = tmp_path / "loans.stories.txt"
    story_file.write_text("US-1: As a member, I want to renew a loan, so that I avoid a fine.\n"
                          "US-2: As a member, I want to see my loans, as US-1 asks, so that I know when to renew (weekly).\n",
                          "utf-8")
    other = tmp_path / "catalogue.stories.txt"
    other.write_text("As a visitor, I want to search the catalogue (after US-1), so that I find a book.\n", "utf-8")
    result = run_neovim(tmp_path, story_file, symbols=True, rename="0:2:LOAN-1")
    assert [(s["line"], s["text"]) for s in result["symbols"]] == [
        (1, "[Object] US-1  renew a loan"), (2, "[Object] US-2  see my loans, as US-1 asks")]
    assert result.get("renamed") and "rename_error" not in result
    assert result["lines_after_rename"][0].startswith("LOAN-1: As a member")
    assert "as LOAN-1 asks" in result["lines_after_rename"][1]
    assert "US-1" not in " ".join(result["lines_after_rename"])
    # the file that was not open: Neovim loads it into a buffer and edits it there, unsaved
    assert result["buffers_after_rename"]["catalogue.stories.txt"] == [
        "As a visitor, I want to search the catalogue (after LOAN-1), so that I find a book."]


# One story file per format the server reads, each with a finding Neovim must show on a known line.
FORMATS = {
    "loans.feature": ("cucumber", "Feature: Loans\n  As a member, I want to renew a loan (online), so that I avoid a fine.\n\n"
                      "  Scenario: Renew a loan\n    Given a loan\n", "ST301", 1),
    "backlog.md": ("markdown", "# Backlog\n\n- As a member, I want to renew a loan, so that I avoid a fine.\n"
                   "- I want to export the monthly report, so that I can share it with the board.\n", "ST101", 3),
    "export.csv": ("csv", "id,User Story\n1,\"As a member, I want to renew a loan, so that I avoid a fine.\"\n"
                   "2,\"I want to export the monthly report, so that I can share it with the board.\"\n", "ST101", 2),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_the_documented_configuration_attaches_to_every_format(tmp_path, name):
    filetype, text, code, line = FORMATS[name]
    path = tmp_path / name
    path.write_text(text, "utf-8")
    result = run_neovim(tmp_path, path)
    assert result["filetype"] == filetype
    assert result["client_started"], f"no client attached to a {filetype} buffer"
    assert result["got_diagnostics"], f"no diagnostics in a {filetype} buffer"
    assert (code, line) in {(d["code"], d["line"]) for d in result["before"]}, result["before"]
    assert all(d["source"] == "storytransformer" for d in result["before"])

"""Bad files never stop a run: each gets a clear per-file message, and nothing is written."""

from __future__ import annotations

import os

from storytransformer.config import Config
from storytransformer.workspace import FileProblem, Workspace, load_file

from .test_check_cli import run

STORY = "As a member, I want to renew a loan, so that I keep the book.\n"


def snapshot(root):
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".cache" not in str(p)}


def test_mixed_bad_files_are_reported_and_the_run_goes_on(tmp_path):
    (tmp_path / "good.txt").write_text(STORY + "As a user, I want fast search.\n")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02PNG" * 100)
    (tmp_path / "latin1.txt").write_bytes(b"As a user, I want to log in.\nAs a caf\xe9 owner, I want coffee.\n")
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "long.txt").write_text("As a user, I want " + "very " * 20000 + "long stories.\n")
    (tmp_path / "loop").mkdir()
    os.symlink("..", tmp_path / "loop" / "up")
    os.symlink("missing.txt", tmp_path / "dangling.txt")
    with open(tmp_path / "huge.txt", "wb") as f:
        f.write((STORY * 900_000)[: 50 * 1024 * 1024].encode())
    before = snapshot(tmp_path)

    r = run("check", "--no-semantic", ".", cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "good.txt:2:" in out and "ST701" in out
    assert "binary.txt: notice: skipped: binary file" in out
    assert "latin1.txt:2: error: invalid UTF-8 at byte 37" in out
    assert "huge.txt: notice: skipped: 52.4 MB is larger than max_file_bytes" in out
    assert "long.txt:1:" in out  # a 100,000-character line is checked like any other
    assert "symlink loop" in out
    assert snapshot(tmp_path) == before


def test_fix_writes_nothing_to_bad_files(tmp_path):
    (tmp_path / "latin1.txt").write_bytes(b"As a caf\xe9 owner (x), I want coffee.\n")
    before = snapshot(tmp_path)
    run("check", "--no-semantic", "--fix", ".", cwd=tmp_path)
    assert snapshot(tmp_path) == before


def test_unreadable_path_is_a_clear_error(tmp_path):
    (tmp_path / "b.txt").write_text(STORY)
    problem = load_file(str(tmp_path / "b.txt" / "inside.txt"), Config())
    assert isinstance(problem, FileProblem) and problem.kind == "error"
    assert "cannot read" in problem.message


def test_ten_thousand_files(tmp_path):
    for i in range(10_000):
        (tmp_path / f"s{i:05d}.txt").write_text(f"As a user, I want to do task {i}.\n")
    ws = Workspace.from_paths([tmp_path], Config())
    assert len(ws.files) == 10_000 and len(ws) == 10_000 and not ws.problems

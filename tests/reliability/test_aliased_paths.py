"""A file is the same file whatever path reaches it, and walks stay inside their tree.

Real files, symbolic links, hard links and FIFOs; the real CLI as a subprocess; the real
language server and daemon processes of their own test fixtures.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storytransformer.config import Config
from storytransformer.lint import Linter
from storytransformer.workspace import Workspace

STORIES = ("# Team backlog\n"
           "As a member, I want to renew a loan, so that I keep the book.\n"
           "As a librarian, I want to add a book, so that members can borrow it.\n"
           "As a visitor, I want to search the catalogue, so that I find a book.\n")
OUTSIDE = "I want to export the monthly reports quickly.\n"  # findings (no role, vague): visible if read


def st(*args: str, cwd: Path, timeout: float = 120, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(cwd / ".cache-test")}
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, stdin=stdin, timeout=timeout)


# -- one file, many paths: --fix must not delete it as its own duplicate ------------------

def test_fix_keeps_a_file_reached_also_through_a_symlink(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "z-backlog.txt").write_text(STORIES)
    os.symlink("z-backlog.txt", tmp_path / "a" / "a-current.txt")
    r = st("check", "--fix", "--no-semantic", "a", cwd=tmp_path)
    assert (tmp_path / "a" / "z-backlog.txt").read_text() == STORIES
    assert r.returncode == 0, r.stderr
    assert "a-current.txt: notice: skipped: the same file as a/z-backlog.txt" in r.stdout
    assert "3 stories in 1 file" in r.stderr


def test_fix_keeps_a_file_named_twice(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "backlog.txt").write_text(STORIES)
    r = st("check", "--fix", "--no-semantic", "b/backlog.txt", "b/../b/backlog.txt", cwd=tmp_path)
    assert (tmp_path / "b" / "backlog.txt").read_text() == STORIES
    assert r.returncode == 0 and "3 stories in 1 file" in r.stderr, r.stdout + r.stderr


def test_fix_keeps_both_names_of_a_hard_link(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "backlog.txt").write_text(STORIES)
    os.link(tmp_path / "b" / "backlog.txt", tmp_path / "b" / "copy.txt")
    r = st("check", "--fix", "--no-semantic", "b", cwd=tmp_path)
    assert (tmp_path / "b" / "backlog.txt").read_text() == STORIES
    assert (tmp_path / "b" / "copy.txt").read_text() == STORIES
    assert r.returncode == 0, r.stdout + r.stderr
    assert "copy.txt: notice: skipped: the same file as b/backlog.txt (a hard link to it)" in r.stdout


def test_a_workspace_fed_one_file_twice_finds_no_duplicates_in_it(tmp_path):
    """Below discover: the workspace itself loads a file once, and an alias is never a duplicate."""
    (tmp_path / "backlog.txt").write_text(STORIES)
    os.link(tmp_path / "backlog.txt", tmp_path / "hard.txt")
    os.symlink("backlog.txt", tmp_path / "soft.txt")
    ws = Workspace(Config(root=str(tmp_path)))
    for name in ("backlog.txt", "hard.txt", "soft.txt"):
        ws.load(str(tmp_path / name))
    assert list(ws.files) == [str(tmp_path / "backlog.txt")] and len(ws) == 3
    assert ws.problems[str(tmp_path / "hard.txt")].kind == "notice"
    # an editor's text for an alias (set_text does not refuse it): still not a duplicate of itself
    ws.set_text(str(tmp_path / "soft.txt"), STORIES)
    found = Linter(ws).check()
    assert not [f for f in found if f.code.startswith("ST60")], found


# -- walks stay inside their tree ------------------------------------------------------------

def test_check_does_not_walk_out_through_symlinks(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "backlog.txt").write_text(STORIES)
    os.symlink("/", tree / "rootlink")  # before: the whole machine, past 90 s and 1.26 GB
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(OUTSIDE)
    os.symlink(outside, tree / "elsewhere")
    os.symlink(outside / "secret.txt", tree / "leak.txt")
    os.symlink("backlog.txt", tree / "inside-link.txt")  # a link inside the tree: same file, once
    start = time.monotonic()
    r = st("check", "--no-semantic", "tree", cwd=tmp_path, timeout=60)
    assert time.monotonic() - start < 60
    assert r.returncode == 0, r.stdout + r.stderr
    assert "secret.txt:1:" not in r.stdout and "3 stories in 1 file" in r.stderr
    for name in ("rootlink", "elsewhere", "leak.txt"):
        assert f"tree/{name}: notice: skipped: symbolic link to" in r.stdout, r.stdout
    # named explicitly, a link is followed
    for named in ("tree/elsewhere", "tree/leak.txt"):
        r = st("check", "--no-semantic", named, cwd=tmp_path)
        assert r.returncode == 1 and "ST101" in r.stdout, r.stdout


def test_a_fifo_named_on_the_command_line_is_named_for_what_it_is(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    r = st("check", "--no-semantic", "pipe.txt", cwd=tmp_path, timeout=60)
    assert r.returncode == 2
    assert "pipe.txt: error: not a regular file (FIFO)" in r.stdout, r.stdout
    assert "no such file" not in r.stdout


def test_dev_stdin_is_named_for_what_it_is(tmp_path):
    if not os.path.exists("/dev/stdin"):
        pytest.skip("no /dev/stdin here")
    r = subprocess.run(f"echo hi | {sys.executable} -m storytransformer check --no-semantic /dev/stdin", shell=True,
                       cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(tmp_path / ".cache-test")})
    assert r.returncode == 2
    assert "/dev/stdin: error: not a regular file (FIFO)" in r.stdout, r.stdout
    assert "broken symbolic link" not in r.stdout


# -- the language server's scan and the daemon's register go through the same rule ---------

@pytest.fixture
def linked_tree(tmp_path):
    """A root with one story file, and links out of it to a directory and a file with findings."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "backlog.txt").write_text(STORIES.replace("As a visitor, ", ""))  # one finding, to see the scan
    outside = tmp_path / "outside"
    outside.mkdir()
    for i in range(4):
        (outside / f"other-{i}.txt").write_text(OUTSIDE * 100)
    os.symlink(outside, root / "docs")
    os.symlink(outside / "other-0.txt", root / "leak.txt")
    return root, outside


try:
    from lsprotocol import types

    from tests.lsp.conftest import client, scanned, start, uri  # noqa: F401  (the real server fixture)
except ImportError:  # pragma: no cover
    client = None


async def test_language_server_scan_does_not_follow_links_out_of_the_root(client, linked_tree):  # noqa: F811
    root, outside = linked_tree
    await start(client, root)
    await scanned(client)
    from tests.lsp.conftest import until

    await until(lambda: client.diagnostics.get(uri(root / "backlog.txt")), what="diagnostics of backlog.txt")
    await asyncio.sleep(0.5)  # anything else the scan would publish
    published = {p.uri for p in client.published if p.diagnostics}
    assert published == {uri(root / "backlog.txt")}, published


def _read_bytes_of(pid: int) -> int:
    with open(f"/proc/{pid}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


async def test_daemon_register_does_not_read_files_behind_links_out_of_the_root(tmp_path, linked_tree):
    if not os.path.exists(f"/proc/{os.getpid()}/io"):
        pytest.skip("no /proc/PID/io to count the daemon's reads")
    from tests.daemon.conftest import DaemonProcess

    root, outside = linked_tree
    for i in range(4):  # 8 MB behind the link: the daemon reading it is plain in its read count
        (outside / f"big-{i}.txt").write_text(("As a member, I want to renew loan %d, so that I keep it.\n" % i) * 36_000)
    warm = tmp_path / "warm"
    warm.mkdir()
    (warm / "backlog.txt").write_text(STORIES)
    d = DaemonProcess(tmp_path / "daemon")
    d.start()
    try:
        c = await d.connect()
        try:
            await c.request("workspace/register", {"root": str(warm)})  # imports and caches: not counted
            before = _read_bytes_of(d.proc.pid)
            summary = await c.request("workspace/register", {"root": str(root)})
            read = _read_bytes_of(d.proc.pid) - before
            assert summary["files"] == 1, summary
            assert read < 2_000_000, f"the daemon read {read:,} bytes registering a root of one small file"
        finally:
            await c.close()
    finally:
        d.stop()

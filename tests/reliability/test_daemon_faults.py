"""Daemon faults: kill -9 under load, a full cache disk, corrupted caches.

(A model that fails to load is covered by tests/daemon/test_workspace.py:
``test_a_model_that_cannot_load_is_a_clear_error_not_a_crash``.)
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon.conftest import DaemonProcess

ROOT = Path(__file__).resolve().parents[2]
STORIES = (
    "As a visitor, I want to search the catalogue, so that I find books.\n"
    "I want to export the monthly reports quickly.\n"
    "As a librarian, I want to add and remove titles (see the old form), so that visitors can borrow them.\n"
    "As a visitor, I want to search the catalogue, so that I find books.\n"
)


def load_bench(name: str):
    """A benchmark module, importable by name (its client processes are started with ``spawn``)."""
    bench = str(ROOT / "benchmarks")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module(name)


def test_kill_9_at_random_points_while_several_clients_send_requests():
    soak = load_bench("soak_daemon")
    r = soak.run(total=150, clients=3, rate_per_client=25.0, timeout=2.0, kill_between=(10, 40), steady_requests=50)
    assert r["daemons_killed"] >= 2, r
    assert r["outlived_deadline"] == 0, r  # no request waited past its deadline, dead daemon or not
    assert r["wrong_answers"] == 0, r
    assert r["served"] + r["failed_total"] == r["requests"]
    assert r["served"] >= r["requests"] // 2, r  # the clients recovered: most requests were served
    assert set(r["failed"]) <= {"-32010", "-32001"}, r  # connection lost, deadline exceeded: nothing else
    assert r["steady"]["failed"] == 0 and r["steady"]["served"] == r["steady"]["requests"]
    assert not r["daemon_left_running"]


def cli_check(cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "storytransformer", "check", "--select", "ST1,ST2,ST3,ST5,ST6",
                           "backlog.txt"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def backlog(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "backlog.txt").write_text(STORIES, "utf-8")
    return ws


@pytest.fixture(params=["file-in-place-of-the-directory", "full-tmpfs"])
def unwritable_cache(request, tmp_path):
    """A cache directory where every write fails: a file where the directory should be, or a full 64 KiB tmpfs."""
    if request.param.startswith("file"):
        path = tmp_path / "cache"
        path.write_text("not a directory")
        yield path
        return
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)  # fill it up
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


async def test_findings_are_answered_when_the_cache_cannot_be_written(tmp_path, backlog, unwritable_cache):
    good = cli_check(tmp_path / "good-cache", backlog)
    bad = cli_check(unwritable_cache, backlog)
    assert bad.returncode == good.returncode == 1, bad.stderr
    assert bad.stdout == good.stdout  # the same findings, cache or no cache
    d = DaemonProcess(tmp_path / "daemon", cache=unwritable_cache)
    d.start()
    try:
        client = await d.connect()
        try:
            await client.request("workspace/register", {"root": str(backlog)}, timeout=60)
            answer = await client.request("findings", {"path": str(backlog / "backlog.txt"), "semantic": False}, timeout=60)
            codes = {f["code"] for f in answer["findings"]}
            assert {"ST101", "ST601"} <= codes, codes
            assert (await client.request("status"))["pid"] == d.proc.pid  # still serving
        finally:
            await client.close()
    finally:
        d.stop()


def test_corrupted_cache_files_are_ignored_and_rebuilt(tmp_path, backlog):
    cache = tmp_path / "cache"
    first = cli_check(cache, backlog)
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert files, "the first run wrote no cache"
    sizes = {}
    for i, p in enumerate(files):  # garbage of several kinds: random bytes, truncated, empty
        data = p.read_bytes()
        p.write_bytes([os.urandom(37), data[: len(data) // 2], b""][i % 3])
        sizes[p] = len(data)
    second = cli_check(cache, backlog)
    assert second.returncode == first.returncode == 1, second.stderr
    assert second.stdout == first.stdout
    import msgpack

    readable: dict[str, int] = {}
    for p in cache.rglob("*.msgpack"):  # rebuilt: each cache has readable entries again
        try:
            msgpack.unpackb(p.read_bytes(), strict_map_key=False)
            kind = p.relative_to(cache).parts[0]
            readable[kind] = readable.get(kind, 0) + 1
        except ValueError:
            pass
    kinds = {p.relative_to(cache).parts[0] for p in files}
    assert kinds <= set(readable), (kinds, readable)

"""Child processes die with their parent: a killed language server leaves no parser behind.

Before, every language server killed with ``kill -9`` (or crashed) left its ~300 MB parser
process running; 17 of them piled up on one machine. The daemon is different on purpose: it
is started detached and outlives the language server that started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 5.0


def _env(tmp_path: Path) -> dict:
    (tmp_path / ".rt").mkdir(mode=0o700, exist_ok=True)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "STORYTRANSFORMER_RUNTIME_DIR": str(tmp_path / ".rt"),
            "XDG_RUNTIME_DIR": str(tmp_path / ".rt"), "STORYTRANSFORMER_CACHE_DIR": str(tmp_path / ".cache"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])}


def _wait_for_children(pid: int, timeout: float = 30) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = [k for k in parent.children(recursive=True) if "multiprocessing" in " ".join(_cmdline(k))]
        if kids:
            return parent.children(recursive=True)
        time.sleep(0.1)
    raise AssertionError(f"process {pid} started no parser process within {timeout} s")


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _assert_all_gone(children: list[psutil.Process]) -> None:
    gone, alive = psutil.wait_procs(children, timeout=GONE_WITHIN_S)
    for p in alive:  # do not leave them behind for the next test, but fail
        p.kill()
    assert not alive, f"still running {GONE_WITHIN_S} s after their parent was killed: {[_cmdline(p) for p in alive]}"


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def _start_language_server(tmp_path: Path):
    """The real language server over stdio on a two-story backlog (benchmarks/soak_lsp.py's raw client)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("soak_lsp", ROOT / "benchmarks" / "soak_lsp.py")
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    (tmp_path / "backlog.txt").write_text(
        "As a visitor, I want to search and filter the catalogue, so that I find books.\n"
        "As a librarian, I want to add and edit titles, so that visitors can borrow them.\n", "utf-8")
    return soak.start_server(tmp_path, debounce_ms=10)


def test_killing_the_language_server_ends_its_parser_process(tmp_path):
    lsp = _start_language_server(tmp_path)
    try:
        children = _wait_for_children(lsp.proc.pid)
        parser = [c for c in children if "multiprocessing" in " ".join(_cmdline(c))]
        assert parser and all(c.pid != os.getpid() for c in parser)
        assert all(os.getpgid(c.pid) == os.getpgid(lsp.proc.pid) for c in parser)  # in the server's group
        _kill(lsp.proc)
        _assert_all_gone(children)
    finally:
        if lsp.proc.poll() is None:
            lsp.proc.kill()


@pytest.mark.parametrize("shutdown_first, code", [(True, 0), (False, 1)])
def test_the_language_server_exits_when_told_with_the_code_the_lsp_asks_for(tmp_path, shutdown_first, code):
    """``exit`` ends the server and its parser within seconds: 0 after a ``shutdown`` request, 1 without.
    Before, the code was always 0, and now and then the interpreter's finalization never ended (a
    process-pool callback waiting on a lock), so the editor, or the test, waited for it forever."""
    lsp = _start_language_server(tmp_path)
    try:
        children = _wait_for_children(lsp.proc.pid)
        lsp.wait_published((tmp_path / "backlog.txt").as_uri(), None, timeout=120)  # the parser has worked
        if shutdown_first:
            assert "result" in lsp.request("shutdown", None, 30)
        lsp.notify("exit")
        assert lsp.proc.wait(GONE_WITHIN_S * 2) == code
        _assert_all_gone(children)
    finally:
        if lsp.proc.poll() is None:
            lsp.proc.kill()


SCRIPT = textwrap.dedent("""
    import os, sys
    from storytransformer.nlp import BackgroundParser
    p = BackgroundParser()
    p.ready.result(120)
    print("ready", flush=True)
    if sys.stdin.readline().strip() == "crash":
        os.abort()  # a crash: no clean-up, no atexit
    sys.stdin.readline()
""")


@pytest.mark.parametrize("how", ["SIGKILL", "crash"])
def test_a_parser_dies_with_the_process_that_started_it(tmp_path, how):
    """Any process that starts the parser (the CLI's check, a script): killed or crashed, the parser ends too."""
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env=_env(tmp_path), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children
        if how == "SIGKILL":
            _kill(proc)
        else:
            proc.stdin.write("crash\n")
            proc.stdin.flush()
            assert proc.wait(10) == -signal.SIGABRT
        _assert_all_gone(children)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stdin.close()

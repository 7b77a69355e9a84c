"""Real daemon processes on real sockets, each in its own temporary runtime directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storytransformer_server.daemon.client import DaemonClient
from storytransformer_server.daemon.lifecycle import socket_answers

GOOD_STORIES = (
    "As a visitor, I want to search the catalogue, so that I find books.\n"
    "As a librarian, I want to add new titles, so that visitors can borrow them.\n"
)
BAD_STORY = "I want to export the monthly reports quickly.\n"  # no role, a vague word; no parser needed


def daemon_env(runtime: Path, logs: Path, cache: Path | None = None) -> dict:
    env = dict(os.environ)
    env.update({
        "STORYTRANSFORMER_CACHE_DIR": str(cache or logs.parent / "cache"),  # never the user's cache
        "STORYTRANSFORMER_RUNTIME_DIR": str(runtime),
        "STORYTRANSFORMER_LOG_DIR": str(logs),
        "STORYTRANSFORMER_DAEMON_CONFIG": str(logs / "no-such-daemon.toml"),  # ignore the user's settings
        "STORYTRANSFORMER_DAEMON_DEBUG": "1",
        "HF_HUB_OFFLINE": "1",
    })
    return env


class DaemonProcess:
    """One ``storytransformer daemon run`` subprocess and the paths it uses."""

    def __init__(self, base: Path, cache: Path | None = None):
        self.runtime = base / "rt"
        self.logs = base / "logs"
        self.env = daemon_env(self.runtime, self.logs, cache)
        self.proc: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.runtime / "daemon.sock"

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "storytransformer", "daemon", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, *flags: str, wait: bool = True) -> subprocess.Popen:
        self.proc = subprocess.Popen([sys.executable, "-m", "storytransformer", "daemon", "run", "--quiet", *flags],
                                     env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if wait:
            self.wait_until_up()
        return self.proc

    def wait_until_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.runtime / "daemon.json").exists() and socket_answers(self.socket):  # fully started
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}: {self.proc.stderr.read()}")
            time.sleep(0.02)
        raise AssertionError(f"daemon did not answer on {self.socket} within {timeout} s")

    async def connect(self, name: str = "test") -> DaemonClient:
        return await DaemonClient.connect(spawn=False, runtime_dir=self.runtime, client_name=name)

    def wait_exit(self, timeout: float = 15) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream:
                    stream.close()
        self._stop_detached()

    def _stop_detached(self) -> None:
        """A daemon the test spawned detached (through the client) must not outlive the test."""
        from storytransformer_server.daemon.lifecycle import InstanceLock

        lock = self.runtime / "daemon.lock"
        if not InstanceLock(lock).is_held_elsewhere():
            return
        try:
            pid = int(lock.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and InstanceLock(lock).is_held_elsewhere():
                time.sleep(0.05)
            if not InstanceLock(lock).is_held_elsewhere():
                return


@pytest.fixture
def daemon_process(tmp_path):
    """A daemon that is not started yet (for lifecycle tests)."""
    d = DaemonProcess(tmp_path)
    yield d
    d.stop()


@pytest.fixture
def daemon(daemon_process):
    """A running daemon."""
    daemon_process.start()
    return daemon_process


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A small workspace with one story file (synthetic stories)."""
    root = tmp_path / "ws"
    (root / "stories").mkdir(parents=True)
    (root / "stories" / "backlog.txt").write_text(GOOD_STORIES, "utf-8")
    (root / "node_modules").mkdir()
    return root


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll ``predicate`` (sync) until true; fail after ``timeout`` (a safety net, not a speed assertion)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")

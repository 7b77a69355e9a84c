"""`check --watch` as a terminal user runs it: a real process, real files changed on disk, Ctrl+C."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

from .test_check_cli import run

PROBLEM = "As a member, I want to pay a fine (online), so that my account is clear.\n"
CLEAN = "As a member, I want to pay a fine online, so that my account is clear.\n"
BUNDLED = "As a clerk, I want to add and remove books, so that the catalogue is right.\n"


class Watcher:
    """`storytransformer check --watch` in a subprocess, its stderr read line by line."""

    def __init__(self, cwd, *args):
        env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(cwd / ".cache-test")}
        self.proc = subprocess.Popen([sys.executable, "-m", "storytransformer", "check", "--watch", *args],
                                     cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"the watcher exited ({self.proc.returncode}): {self.seen}"
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} on stderr within {timeout} s: {self.seen}")

    def quiet_for(self, seconds: float) -> list[str]:
        """The stderr lines that came within ``seconds``."""
        got, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                got.append(self.lines.get(timeout=0.1))
            except queue.Empty:
                pass
        self.seen += got
        return got


def test_watch_checks_again_on_edits_new_files_and_deletions_and_stops_on_ctrl_c(tmp_path):
    (tmp_path / "fines.stories.txt").write_text(PROBLEM)
    w = Watcher(tmp_path, "--no-semantic", ".")
    try:
        assert "Found 1 problem" in w.wait_for("Found")
        w.wait_for("Watching for changes")

        (tmp_path / "fines.stories.txt").write_text(CLEAN)  # the writer fixes the story
        assert "fines.stories.txt" in w.wait_for("Changed:")
        assert "No problems in 1 story in 1 file" in w.wait_for("No problems")
        w.wait_for("Watching for changes")

        (tmp_path / "sub").mkdir()  # a new story file in a new folder
        (tmp_path / "sub" / "books.stories.txt").write_text(BUNDLED)
        w.wait_for("Changed:")
        assert "in 2 files" in w.wait_for("Found 1 problem")
        w.wait_for("Watching for changes")

        (tmp_path / "notes.log").write_text("not a story file\n")  # neither checked nor a story file
        assert not [line for line in w.quiet_for(3) if "Changed:" in line], w.seen

        (tmp_path / "pyproject.toml").write_text("[tool.storytransformer]\nignore = 3\n")  # a broken setting
        assert "pyproject.toml" in w.wait_for("Changed:")
        assert "pyproject.toml" in w.wait_for("error:")  # said, and the watch goes on
        w.wait_for("Watching for changes")
        (tmp_path / "pyproject.toml").write_text('[tool.storytransformer]\nignore = ["ST201"]\n')
        w.wait_for("Changed:")
        assert "in 2 files" in w.wait_for("No problems")  # the new configuration applies
        w.wait_for("Watching for changes")

        (tmp_path / "sub" / "books.stories.txt").unlink()
        w.wait_for("Changed:")
        assert "in 1 file" in w.wait_for("No problems")
        w.wait_for("Watching for changes")

        outside = tmp_path.parent / f"{tmp_path.name}-export"  # a folder of forty files moved in: one check
        outside.mkdir()
        for i in range(40):
            (outside / f"s{i}.stories.txt").write_text(CLEAN.replace("a fine", f"fine {i}"))
        outside.rename(tmp_path / "many")
        assert "and 37 more" in w.wait_for("Changed:")
        assert "in 41 files" in w.wait_for("No problems")
        assert not [line for line in w.quiet_for(2) if "Changed:" in line], w.seen

        w.proc.send_signal(signal.SIGINT)
        assert w.proc.wait(timeout=30) == 0
        w.wait_for("Stopped watching.", timeout=10)
        out = w.proc.stdout.read()
        assert out.index("ST301") < out.index("ST201"), out  # each check's report, in order
        assert "notes.log" not in "\n".join(w.seen)
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def test_watch_refuses_flags_that_write_and_paths_that_are_not_there(tmp_path):
    (tmp_path / "fines.stories.txt").write_text(PROBLEM)
    r = run("check", "--watch", "--fix", ".", cwd=tmp_path)
    assert r.returncode == 2 and "--watch" in r.stderr and "--fix" in r.stderr, r.stderr
    r = run("check", "--watch", "-", cwd=tmp_path)
    assert r.returncode == 2 and "standard input" in r.stderr, r.stderr
    r = run("check", "--watch", "missing", cwd=tmp_path)
    assert r.returncode == 2 and "missing: no such file or directory" in r.stderr, r.stderr
    assert (tmp_path / "fines.stories.txt").read_text() == PROBLEM

"""A process killed in the middle of a write leaves the old file or the new one, never a mix."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

WRITER = """
import sys
from storytransformer.edits import atomic_write
path, n = sys.argv[1], 0
old, new = open(path).read(), sys.argv[2] * 3_000_000
print("ready", flush=True)
while True:
    atomic_write(path, new if n % 2 == 0 else old)
    n += 1
"""


def test_kill_9_during_writes_never_leaves_a_mixed_file(tmp_path):
    path = tmp_path / "backlog.txt"
    old = "As a member, I want to renew a loan.\n" * 50_000
    path.write_text(old)
    new = "As a user, I want to log in.\n" * 3_000_000
    rng = random.Random(3)
    for _ in range(8):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "As a user, I want to log in.\n"],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        content = path.read_text()
        assert content in (old, new), f"mixed file of {len(content)} characters"
    leftovers = [f.name for f in tmp_path.iterdir() if f.name != "backlog.txt"]
    # A kill can leave a temporary file beside the target; the next write removes stale ones.
    from storytransformer.edits import atomic_write

    atomic_write(str(path), "As a user, I want to log out.\n", stale_after_s=0)
    assert [f.name for f in tmp_path.iterdir()] == ["backlog.txt"], leftovers

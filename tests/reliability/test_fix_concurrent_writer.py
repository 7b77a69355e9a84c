"""``storytransformer check --fix`` while another process rewrites the same file never loses the newer text.

A writer keeps replacing the file (atomically, as editors with safe-write do, and in
place, as the others do), each version marked with a revision number; ``check --fix``
runs again and again meanwhile. After each burst of writes, once a whole ``--fix`` run has
started after the last write, the file must hold the writer's last revision (fixed or
not), never a fix computed from an older one.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time

FIXABLE = [
    "As a user I want to export the data so that I can share it.",  # missing commas (a safe fix)
    "As a clerk, I want to print the invoice (see the old form), so that I can file it.",  # bracketed note
    "As a manager , I want to approve a holiday , so that the team knows.",
]


def version_text(revision: int) -> str:
    lines = [FIXABLE[i % len(FIXABLE)].replace("the", f"the {i}th", 1) for i in range(30)]
    lines.insert(revision % 30, f"As a reader, I want to open page {revision}, so that I read revision {revision}.")
    return "\n".join(lines) + "\n"


def revision_in(text: str) -> int | None:
    m = re.search(r"open page (\d+)", text)
    return int(m.group(1)) if m else None


def write(path, text: str, rng: random.Random) -> None:
    if rng.random() < 0.5:
        tmp = f"{path}.writer.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def test_check_fix_never_overwrites_a_newer_text(tmp_path):
    path = tmp_path / "backlog.txt"
    path.write_text(version_text(0), "utf-8")
    env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    # only the quick deterministic rules (no embedding model): many --fix runs in a few seconds
    runs = {"started": 0, "finished": 0, "fixed": 0, "refused": 0}
    cond = threading.Condition()
    stop = threading.Event()

    def fixer() -> None:
        while not stop.is_set():
            with cond:
                runs["started"] += 1
            p = subprocess.run([sys.executable, "-m", "storytransformer", "check", "--fix", "--no-cache", "--select", "ST3,ST5", str(path)],
                               env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
            with cond:
                runs["finished"] += 1
                runs["refused"] += "changed on disk" in p.stderr
                runs["fixed"] += p.returncode in (0, 1) and "changed on disk" not in p.stderr
                cond.notify_all()

    thread = threading.Thread(target=fixer, daemon=True)
    thread.start()
    rng = random.Random(5)
    revision = 0
    checked = []
    try:
        for _round in range(5):
            end = time.monotonic() + rng.uniform(0.3, 1.5)
            while time.monotonic() < end:
                revision += 1
                write(path, version_text(revision), rng)
                time.sleep(rng.uniform(0, 0.05))
            with cond:  # wait for a --fix run that started after the last write to end
                target = runs["started"] + 1
                assert cond.wait_for(lambda: runs["finished"] >= target, timeout=120)
            found = revision_in(path.read_text("utf-8"))
            checked.append((revision, found))
            assert found == revision, f"revision {revision} was overwritten by a fix of revision {found}"
    finally:
        stop.set()
        thread.join(120)
    final = path.read_text("utf-8")
    assert "I want to export" in final  # still the story file, whole
    assert runs["finished"] >= 5 and runs["refused"] + runs["fixed"] >= 5, runs
    # the runs after each burst did fix the newest text: commas added, notes moved out
    assert "As a user I want" not in final, final[:300]

"""`storytransformer suggest` when nothing passes the rules: it says which stories, why, and what to try."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BACKLOG = ("US-1: As a member, I want to renew a borrowed book online, so that I do not pay a late fee.\n"
           "US-2: As a library member, I want to extend my loan of a book on the website, so that I keep reading.\n")


def run(*args, cwd):
    env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(Path(cwd) / ".cache-test"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_a_merge_with_no_grounded_proposal_says_why_and_what_to_try(tmp_path):
    (tmp_path / "b.txt").write_text(BACKLOG, "utf-8")
    r = run("suggest", "merge", "b.txt:1", "b.txt:2", "--no-generate", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "US-1 at b.txt:1, US-2 at b.txt:2: no grounded merge: no proposal kept every part of both stories" in r.stdout
    assert "'extend', 'loan'" in r.stdout  # the words that one story would lose
    assert "--duplicates" in r.stdout  # the stories are not known to be duplicates: what would change that
    # JSON stays a list of proposals; the reason goes to stderr
    j = run("suggest", "merge", "b.txt:1", "b.txt:2", "--no-generate", "--format", "json", cwd=tmp_path)
    assert j.returncode == 0 and json.loads(j.stdout) == []
    assert "no grounded merge" in j.stderr
    # as duplicates the same two stories merge, and nothing is said to be missing
    d = run("suggest", "merge", "b.txt:1", "b.txt:2", "--no-generate", "--duplicates", cwd=tmp_path)
    assert "merge of US-1 at b.txt:1, US-2 at b.txt:2" in d.stdout and "no grounded" not in d.stdout

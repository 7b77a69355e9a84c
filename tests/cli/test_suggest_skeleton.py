"""`storytransformer suggest rewrite` of a line that is not a story: skeletons from its own words,
placeholders left for the user, answered without loading the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run(*args, cwd):
    env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(Path(cwd) / ".cache-test"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_a_line_that_is_not_a_story_gets_one_skeleton_per_wish_quickly(tmp_path):
    (tmp_path / "b.txt").write_text("As a member, I want to renew a loan, so that I keep the book.\n"
                                    "search should be fast and the renew button must be green\n", "utf-8")
    t0 = time.perf_counter()
    r = run("suggest", "rewrite", "b.txt:2", cwd=tmp_path)
    seconds = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr
    assert "As a <role>, I want to search fast, so that <benefit>." in r.stdout
    assert "As a <role>, I want the renew button to be green, so that <benefit>." in r.stdout
    assert "fill in <role> and <benefit> yourself" in r.stdout
    assert "no grounded proposals" not in r.stdout
    assert seconds < 20, f"{seconds:.1f} s: the skeleton needs no model"  # the model path took 30 s here
    shown = json.loads(run("suggest", "rewrite", "b.txt:2", "--format", "json", cwd=tmp_path).stdout)
    assert len(shown) == 1 and shown[0]["accepted"] and shown[0]["origin"] == "skeleton"
    assert shown[0]["stories"] == ["As a <role>, I want to search fast, so that <benefit>.",
                                   "As a <role>, I want the renew button to be green, so that <benefit>."]


def test_a_story_without_a_role_gets_the_role_placeholder_only(tmp_path):
    (tmp_path / "b.txt").write_text("I want to renew a loan, so that I keep the book.\n", "utf-8")
    r = run("suggest", "rewrite", "b.txt:1", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (p,) = json.loads(r.stdout)
    assert p["stories"] == ["As a <role>, I want to renew a loan, so that I keep the book."]
    text = run("suggest", "rewrite", "b.txt:1", cwd=tmp_path).stdout
    assert "fill in <role> yourself: it is not in the line" in text and "<benefit> yourself" not in text

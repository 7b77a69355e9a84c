"""``storytransformer engine unload`` and ``storytransformer suggest KIND FILE:LINE...``, run as a user runs them."""

from __future__ import annotations

import json
import os

import pytest

from .test_cli import cli

BACKLOG = ("As a cook, I want to boil pasta, so that dinner is ready.\n"
           "As a pilot I want to see the weather map. It should load fast.\n"
           "As a cook, I want to boil the pasta, so that dinner is ready soon.\n")


def private_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    return d


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_engine_unload_without_a_daemon_says_nothing_is_resident(tmp_path, fmt):
    r = cli("engine", "unload", "--runtime-dir", str(private_dir(tmp_path)), "--format", fmt, "--timeout", "2",
            cache=tmp_path / "cache", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    if fmt == "json":
        data = json.loads(r.stdout)
        assert data["daemon"] is False and data["unloaded"] is False and "no daemon" in data["reason"]
    else:
        assert "no resident model is loaded" in r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_suggest_rewrite_file_line(cold_engine, model_cache, tmp_path):
    backlog = tmp_path / "backlog.txt"
    backlog.write_text(BACKLOG)
    r = cli("suggest", "rewrite", f"{backlog}:2", "--format", "json", "--no-generate", cache=model_cache, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out and all(p["kind"] == "rewrite" and p["accepted"] for p in out)
    assert {p["sources"][0]["line"] for p in out} == {2}
    assert "As a pilot, I want to see the weather map." in [p["stories"][0] for p in out]


@pytest.mark.slow
def test_suggest_merge_of_two_file_lines_with_context(cold_engine, model_cache, tmp_path):
    backlog = tmp_path / "backlog.txt"
    backlog.write_text(BACKLOG)
    r = cli("suggest", "merge", f"{backlog}:1", f"{backlog}:3", "--no-generate", "--context",
            cache=model_cache, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "merge of" in r.stdout and "from: " in r.stdout and "pilot" not in r.stdout


@pytest.mark.parametrize("args, message", [
    (("merge", "{b}:1"), "a merge needs two or more FILE:LINE"),
    (("rewrite", "{b}:9"), "no story on that line"),
    (("split", "{b}"), "expected FILE:LINE"),
    (("rewrite", "{d}/missing.txt:1"), "no such file"),
])
def test_suggest_file_line_errors_exit_2(tmp_path, args, message):
    backlog = tmp_path / "backlog.txt"
    backlog.write_text(BACKLOG)
    argv = [a.format(b=backlog, d=tmp_path) for a in args]
    r = cli("suggest", *argv, cache=tmp_path / "cache", cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr

"""The needle-in-a-haystack evaluation: haystacks, placement and the table (not the model's accuracy)."""

from __future__ import annotations

import json
import random

import pytest

from storytransformer.engine import niah

from .test_cli import ROOT, cli


def words(text: str) -> int:
    return len(text.split())


def test_lengths_and_depths_parse_and_refuse_bad_values():
    assert niah.parse_lengths("1k, 2k,512") == [1024, 2048, 512]
    assert niah.parse_depths("0,0.25,1") == [0.0, 0.25, 1.0]
    for bad in ("", "x", "-1", "1m"):
        with pytest.raises(ValueError, match="--lengths"):
            niah.parse_lengths(bad)
    for bad in ("1.5", "a", ""):
        with pytest.raises(ValueError, match="--depths"):
            niah.parse_depths(bad)


@pytest.mark.parametrize("depth", [0.0, 0.25, 0.5, 1.0])
def test_needle_is_planted_at_the_depth_within_the_budget(depth):
    pool, label = niah.haystack_pool(None, ROOT / "examples")
    assert "recombined" in label and not any("whale" in t.lower() for t in pool)
    h = niah.build_haystack(pool, words, 400, depth, random.Random(1))
    n = len(h.lines) - 1  # the other stories
    assert h.needle_index == round(depth * n)
    assert h.lines[h.needle_index] == f"{h.needle_id}: {niah.NEEDLE}"
    assert sum(l.startswith(h.needle_id + ":") for l in h.lines) == 1 and len(set(h.ids)) == len(h.ids)
    assert sum(words(l) + 1 for l in h.lines) <= 400
    assert all(l.split(": ", 1)[1] in pool or l.endswith(niah.NEEDLE) for l in h.lines)  # whole stories only


@pytest.mark.slow
def test_tiny_run_with_the_real_model(engine, tmp_path):
    pool, _ = niah.haystack_pool(None, ROOT / "examples")
    result = niah.run(engine, pool, [256], [0.0, 1.0], generate=False, distractors=3)
    assert [(t.length, t.depth) for t in result.trials] == [(256, 0.0), (256, 1.0)]
    first, last = result.trials
    assert first.needle_index == 0 and last.needle_index == last.stories - 1
    assert first.needle_token_offset < last.needle_token_offset < last.prompt_tokens <= 256
    assert all(1 <= t.needle_rank <= t.candidates == 4 for t in result.trials)
    data = result.to_dict()
    assert set(data["table"]["rank"]["256"]) == {"0.0", "1.0"}
    assert niah.result_from_dict(json.loads(json.dumps(data))).trials == result.trials
    text = niah.table(result, "rank")
    assert text.splitlines()[0] == "| prompt tokens | depth 0 | depth 1 |"
    assert text.splitlines()[2].split(" | ")[1] in ("hit", "miss")


@pytest.mark.slow
def test_cli_prints_the_table_and_writes_json(cold_engine, model_cache, tmp_path):
    out = tmp_path / "niah.json"
    r = cli("eval", "niah", "--lengths", "256", "--depths", "0.5", "--distractors", "2", "--haystack",
            str(ROOT / "examples"), "--out", str(out), cache=model_cache, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "| prompt tokens | depth 0.5 |" in r.stdout and "| 256 |" in r.stdout
    data = json.loads(out.read_text())
    assert data["lengths"] == [256] and len(data["trials"]) == 1 and data["trials"][0]["answer"] is not None


def test_cli_refuses_bad_arguments(tmp_path):
    r = cli("eval", "niah", "--depths", "2", cache=tmp_path / "cache", cwd=tmp_path)
    assert r.returncode == 2 and "--depths" in r.stderr

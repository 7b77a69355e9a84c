"""``storytransformer similar`` and ``storytransformer clusters`` as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from .helpers import labelled_pairs

pytestmark = pytest.mark.slow

STORY = {
    "type": "object",
    "required": ["file", "line", "story_id", "text", "role", "means", "ends"],
    "properties": {"file": {"type": "string"}, "line": {"type": "integer", "minimum": 1},
                   "story_id": {"type": "string"}, "text": {"type": "string"},
                   "role": {"type": ["string", "null"]}, "means": {"type": ["string", "null"]},
                   "ends": {"type": ["string", "null"]}},
}
SIMILAR_SCHEMA = {
    "type": "object",
    "required": ["version", "query", "model", "results"],
    "properties": {
        "version": {"const": 1},
        "results": {"type": "array", "items": {"allOf": [STORY, {
            "type": "object", "required": ["rank", "score", "relation", "scores"],
            "properties": {"rank": {"type": "integer", "minimum": 1}, "score": {"type": "number", "minimum": -1, "maximum": 1},
                           "relation": {"enum": ["duplicate", "overlap", "same-goal", "unrelated"]}}}]}},
    },
}
CLUSTERS_SCHEMA = {
    "type": "object",
    "required": ["version", "model", "stories", "clusters"],
    "properties": {
        "version": {"const": 1},
        "stories": {"type": "integer"},
        "clusters": {"type": "array", "items": {
            "type": "object", "required": ["size", "cohesion", "representative", "stories"],
            "properties": {"size": {"type": "integer", "minimum": 2}, "cohesion": {"type": "number"},
                           "representative": STORY, "stories": {"type": "array", "items": STORY, "minItems": 2}}}},
    },
}


def run(*args, cwd=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1")  # STORYTRANSFORMER_CACHE_DIR: the session's private cache
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_similar_json_lists_the_labelled_paraphrase_first(subset_dir):
    label, fa, la, fb, lb = next(r for r in labelled_pairs() if r[0] == "duplicate" and r[1] == "g14-datahub.txt")
    query = (subset_dir / fa).read_text("utf-8").splitlines()[la - 1]
    r = run("similar", query, str(subset_dir), "-k", "3", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    jsonschema.validate(data, SIMILAR_SCHEMA)
    assert len(data["results"]) == 3 and data["results"][0]["rank"] == 1
    # the query's own story is left out; its labelled paraphrase is among the nearest
    assert all(x["text"] != query for x in data["results"])
    assert (fb, lb) in {(os.path.basename(x["file"]), x["line"]) for x in data["results"]}


def test_similar_text_output_and_bad_arguments(subset_dir):
    r = run("similar", "As a moderator, I want to estimate a story", str(subset_dir), "-k", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].lstrip().startswith("1.")
    assert run("similar", "  ", str(subset_dir)).returncode == 2
    assert run("similar", "x", str(subset_dir), "-k", "0").returncode == 2


def test_similar_takes_a_story_by_file_and_line(tmp_path):
    (tmp_path / "b.txt").write_text(
        "As a member, I want to renew a borrowed book online, so that I do not pay a late fee.\n"
        "As a library member, I want to extend my loan of a book on the website, so that I keep reading it.\n"
        "As a cook, I want to sharpen the knives every morning.\n", "utf-8")
    r = run("similar", "b.txt:1", "b.txt", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    found = [(x["file"], x["line"]) for x in json.loads(r.stdout)["results"]]
    assert found[0] == ("b.txt", 2) and ("b.txt", 1) not in found  # the story itself is not its own neighbour
    missing = run("similar", "b.txt:7", "b.txt", cwd=tmp_path)
    assert missing.returncode == 2 and "b.txt:7: no story on that line" in missing.stderr


def test_similar_bad_model_setting_is_a_clear_error(subset_dir, tmp_path):
    (tmp_path / ".storytransformer.toml").write_text('[similarity]\nmodel = "no/such/dir"\n')
    (tmp_path / "a.txt").write_text("As a user, I want to log in.\n")
    r = run("similar", "log in", str(tmp_path))
    assert r.returncode == 2
    assert "similarity.model" in r.stderr and "no/such/dir" in r.stderr


def test_clusters_json(subset_dir):
    r = run("clusters", str(subset_dir), "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    jsonschema.validate(data, CLUSTERS_SCHEMA)
    assert data["clusters"], "the real backlogs have near-duplicate groups"
    for c in data["clusters"]:
        assert c["stories"][0] == c["representative"] and c["size"] == len(c["stories"])

"""``storytransformer suggest merge`` as a user runs it: a few distinct proposals, each keeping every need."""

from __future__ import annotations

import json

from .test_cli import cli


def test_suggest_merge_of_near_identical_stories_shows_at_most_three(cold_engine, model_cache, tmp_path):
    backlog = tmp_path / "stories.txt"
    backlog.write_text("US-1: As a member, I want to renew a borrowed book online, so that I do not pay a late fee.\n"
                       "US-10: As a member, I want to renew a borrowed book online, so that I can keep reading it "
                       "for longer.\n", "utf-8")
    r = cli("suggest", "merge", f"{backlog}:1", f"{backlog}:2", "--no-generate", "--format", "json",
            cache=model_cache, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    texts = [" ".join(p["stories"]) for p in shown]
    assert 1 <= len(shown) <= 3 and len(set(t.lower() for t in texts)) == len(texts)
    assert all(p["accepted"] for p in shown)
    for t in texts:
        assert "late fee" in t and "keep reading it for longer" in t and "not" in t.split()
    r = cli("suggest", "merge", f"{backlog}:1", f"{backlog}:2", "--no-generate", cache=model_cache, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 1 <= r.stdout.count(": merge of ") <= 3


def test_suggest_merge_of_duplicates_keeps_one_wording_and_lists_the_other(cold_engine, model_cache, tmp_path):
    backlog = tmp_path / "stories.txt"
    backlog.write_text("US-1: As a Publisher, I want to store my data quickly and easily online.\n"
                       "US-2: As a data publisher, I'd like a fast, simple way to put my data online for storage.\n",
                       "utf-8")
    args = ("suggest", "merge", f"{backlog}:1", f"{backlog}:2", "--no-generate", "--format", "json")
    strict = json.loads(cli(*args, cache=model_cache, cwd=tmp_path).stdout)
    assert not [p for p in strict if p["accepted"]]  # as overlaps: no one atomic story keeps both means
    r = cli(*args, "--duplicates", cache=model_cache, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert 1 <= len(shown) <= 4 and all(p["accepted"] for p in shown)
    first = shown[0]
    # one wording of the means is kept, the other is listed as said by its source, naming both by id
    assert len(first["said_by_other_source"]) >= 1
    said = " ".join(first["said_by_other_source"])
    assert ("US-1 at stories.txt:1's means 'store my data quickly and easily online' (said by US-2 at stories.txt:2)"
            in said or "US-2 at stories.txt:2's means 'a fast, simple way to put my data online for storage' "
            "(said by US-1 at stories.txt:1)" in said)
    r = cli(*args[:-2], "--duplicates", cache=model_cache, cwd=tmp_path)
    assert "said by the other source: " in r.stdout


def test_suggest_merge_of_duplicates_with_two_reasons_keeps_both_and_names_each_story(cold_engine, model_cache,
                                                                                      tmp_path):
    """Duplicates asking for one thing for two reasons: every proposal keeps both benefits (the judge by
    meaning finds them different), and a wording set aside names US-10 as US-10, not as US-1 and a 0."""
    backlog = tmp_path / "stories.txt"
    backlog.write_text("US-1: As a library member, I want to renew a book online, so that I do not pay a late fee.\n"
                       "US-10: As a member, I want to renew a borrowed book online, so that I can keep reading it "
                       "for longer.\n", "utf-8")
    r = cli("suggest", "merge", f"{backlog}:1", f"{backlog}:2", "--duplicates", "--no-generate", "--format", "json",
            cache=model_cache, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown and all(p["accepted"] for p in shown)
    for p in shown:
        text = " ".join(p["stories"])
        assert "late fee" in text and "keep reading it for longer" in text, text
        assert not any("ends" in x for x in p["said_by_other_source"])
    said = [x for p in shown for x in p["said_by_other_source"]]
    assert "US-10 at stories.txt:2's means 'renew a borrowed book online' (said by US-1 at stories.txt:1)" in said, said
    assert not any("stories.txt:10" in x for x in said)
    assert "Loading weights" not in r.stderr  # no progress bar of the model loads on the user's terminal
    # why both are kept, said once per merge
    assert shown[0]["benefits_kept_apart"] == ["US-1 at stories.txt:1's 'I do not pay a late fee' and US-10 at "
                                               "stories.txt:2's 'I can keep reading it for longer' state different goals"]
    r = cli("suggest", "merge", f"{backlog}:1", f"{backlog}:2", "--duplicates", "--no-generate", cache=model_cache,
            cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.count("  both benefits kept: US-1 at stories.txt:1's") == 1, r.stdout

"""The near pairs the language model judge is asked about (check --model-checks, ST606), with the real
embedding model: each story's nearest neighbours above the gate, each pair once, closest first."""

from __future__ import annotations

from storytransformer.config import Config, SimilarityConfig
from storytransformer.findings import Finding, Related, Severity
from storytransformer.formats import read_source
from storytransformer.similarity.index import SimilarityIndex
from storytransformer.similarity.near_pairs import flagged_pairs, near_pairs

LINES = [
    "As a member, I want to renew a borrowed book online, so that I can keep reading it.",
    "As a library user, I want to extend the loan of a book I borrowed online, so that I can read it for longer.",
    "As a caretaker, I want to order new light bulbs for the reading room.",
    "As a member, I want to renew a borrowed book online, so that I can keep reading it.",
]


def test_near_pairs_join_close_stories_once_and_leave_far_and_identical_ones_out(tmp_path, embedder):
    stories = read_source(str(tmp_path / "loans.txt"), "\n".join(LINES) + "\n", Config()).stories
    index = SimilarityIndex.build(stories, SimilarityConfig(), embedder=embedder)
    pairs = near_pairs(index)
    assert [(a.line, b.line) for a, b, _ in pairs] == [(0, 1)]  # line 3 is line 0's text: one vector, not a pair
    assert pairs[0][2] >= 0.6
    # with the gate at -1 every neighbour is kept, each pair once, the closest first
    everything = near_pairs(index, gate=-1.0)
    keys = [(a.line, b.line) for a, b, _ in everything]
    assert len(keys) == len(set(keys)) == 3 and keys[0] == (0, 1)
    assert [c for *_, c in everything] == sorted((c for *_, c in everything), reverse=True)
    assert near_pairs(index, per_story=0) == []


def test_flagged_pairs_are_the_findings_stories_joined_both_ways(tmp_path):
    a, b, c = read_source(str(tmp_path / "x.txt"), "\n".join(LINES[:3]) + "\n", Config()).stories
    f = Finding.on(a, "ST603", "unique", Severity.WARNING, "dup", related=(Related(b.file, b.range, b.id),))
    got = flagged_pairs([f], "ST603")
    assert got == {((a.file, 0), (b.file, 1)), ((b.file, 1), (a.file, 0))} and flagged_pairs([f], "ST601") == set()


def test_near_pairs_of_some_stories_are_their_own_nearest_neighbours(tmp_path, embedder):
    """``only``: the pairs found from the accepted stories' rows alone (what an edit asks about)."""
    more = LINES[:3] + ["As a patron, I want to prolong my book loans from home, so that I can finish them.",
                        "As a caretaker, I want to replace the broken bulbs in the reading room."]
    stories = read_source(str(tmp_path / "loans.txt"), "\n".join(more) + "\n", Config()).stories
    index = SimilarityIndex.build(stories, SimilarityConfig(), embedder=embedder)
    every = {(a.line, b.line): c for a, b, c in near_pairs(index, gate=-1.0, per_story=2)}
    mine = near_pairs(index, gate=-1.0, per_story=2, only=lambda s: s.line == 3)
    assert len(mine) == 2 and all(3 in (a.line, b.line) for a, b, _ in mine)
    assert all(abs(every[(a.line, b.line)] - c) < 1e-5 for a, b, c in mine)  # the same cosines (float32 sums)
    # line 3's two nearest are the two renewals, whatever the others' rows say
    assert sorted(min(a.line, b.line) for a, b, _ in mine) == [0, 1]
    assert near_pairs(index, only=lambda s: False) == []

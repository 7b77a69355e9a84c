"""The two passes of the report's merges (:mod:`storytransformer.report.merges`): the real grounded
proposer for every cluster, then a ranking engine while its time lasts. The ranking engine here is
a stand-in that scores by a rule we choose (the real model's ranking is tested through the CLI in
test_clusters.py), so the order and the budget logic can be checked exactly."""

from __future__ import annotations

import time

from storytransformer.config import Config
from storytransformer.engine import DeadlineExceeded, Score
from storytransformer.engine.proposer import GroundedEngine
from storytransformer.formats.text import read_text
from storytransformer.report.merges import NO_TIME_NOTE, RANKED_NOTE, MergeKind, grounded, rank_all

PAIRS = [
    # two stories whose merge keeps both ends: a few grounded candidates
    ["As a member, I want to renew a borrowed book online, so that I can keep reading it.",
     "As a member, I want to renew a borrowed book, so that I do not pay a late fee."],
    ["As an admin, I want to export the reports, so that I can share them.",
     "As an admin, I want to export the invoices, so that I can archive them."],
    # different actions: no one story keeps both, the reason says which need would be lost
    ["As an editor, I want to publish articles, so that readers see them.",
     "As an editor, I want to delete articles, so that old news disappears."],
]


def stories(texts: list[str]):
    return read_text("backlog.txt", "\n".join(texts) + "\n").stories


class Ranker:
    """Scores each text by its length (shorter is better) and can be made slow."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.calls: list[list[str]] = []

    def render(self, messages):
        return "\n".join(m["content"] for m in messages)

    def score(self, texts, *, context="", deadline=None, token=None):
        self.calls.append(list(texts))
        time.sleep(self.delay)
        if deadline is not None and deadline.expired:
            raise DeadlineExceeded("too slow")
        return [Score(-float(len(t)), len(t.split())) for t in texts]


def merges():
    proposer = GroundedEngine(Config())
    return [grounded(proposer, stories(p), same_need=False) for p in PAIRS]


def test_every_cluster_gets_a_grounded_merge_or_says_why():
    found = merges()
    assert [m.kind for m in found] == [MergeKind.DETERMINISTIC, MergeKind.DETERMINISTIC, MergeKind.NONE]
    renew = found[0].to_json()
    assert "late fee" in renew["text"] and "keep reading" in renew["text"]  # every need kept
    assert renew["ranked"] is False and renew["score"] is None
    assert found[2].to_json() is None
    assert found[2].note.startswith("no grounded merge: ")
    assert "publish" in found[2].note or "delete" in found[2].note  # names the need that would be lost


def test_the_model_reorders_and_each_cluster_says_it_was_ranked():
    found = merges()
    ranker = Ranker()
    assert rank_all(ranker, found, seconds=60) == 2
    for m in found[:2]:
        assert m.kind == MergeKind.MODEL and m.note == RANKED_NOTE
        scores = [p.score for p in m.accepted]
        assert scores == sorted(scores, reverse=True)  # best first, by the engine's score
        assert m.to_json()["ranked"] and m.to_json()["score"] == round(scores[0], 4)
    assert found[2].kind == MergeKind.NONE and len(ranker.calls) == 2  # nothing to rank there


def test_no_time_left_keeps_the_deterministic_merge_and_says_so():
    found = merges()
    first_texts = [m.accepted[0].text for m in found[:2]]
    assert rank_all(Ranker(delay=0.05), found, seconds=0.01) == 0
    for m, text in zip(found[:2], first_texts):
        assert m.kind == MergeKind.DETERMINISTIC and m.note == NO_TIME_NOTE
        assert m.accepted[0].text == text and m.accepted[0].score is None


def test_clusters_where_the_order_matters_are_ranked_first():
    _, export, _ = merges()
    # duplicates (same_need): one source's wording may stand for the other's, so there are alternatives
    renew = grounded(GroundedEngine(Config()), stories(PAIRS[0]), same_need=True)
    assert len(export.accepted) == 1 and len(renew.accepted) > 1  # one proposal: ranking only adds a score
    renew_texts = [p.text for p in renew.accepted]
    ranker = Ranker()
    rank_all(ranker, [export, renew], seconds=60)  # the larger cluster (listed first) has nothing to choose
    assert ranker.calls == [renew_texts, [export.accepted[0].text]]

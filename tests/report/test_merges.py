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
from storytransformer.report.merges import (NO_TIME_NOTE, RANKED_NOTE, MergeKind, cluster_merge, grounded,
                                            only_duplicates, rank_all)

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


SAID_OTHERWISE = ["As a buyer, I want to view pictures of the product, so that I can judge its condition.",
                  "As a buyer, I want to see photos of the item."]
OTHER_NEED = "As a buyer, I want to return the item, so that I get my money back."


def edges(members, relation: str, among=None) -> list[dict]:
    """Every pair of ``members`` related as ``relation`` (the report's cluster edges), or only the pairs
    inside ``among`` when given (the other pairs then overlap)."""
    inside = {s.id for s in (among or members)}
    return [{"a": a.id, "b": b.id, "similarity": 0.8,
             "relation": relation if a.id in inside and b.id in inside else "overlap"}
            for i, a in enumerate(members) for b in members[i + 1:]]


def page_of(cluster_stories, merge, kind, edge_list) -> str:
    from storytransformer.report.page import _clusters

    members = [{"story_id": s.id, "story_label": None, "file": "backlog.txt", "line": s.line + 1, "text": s.text}
               for s in cluster_stories]
    return _clusters([{"id": "C1", "size": len(members), "cohesion": 0.8, "representative": members[0]["story_id"],
                       "edges": edge_list, "stories": members, "merge": merge, "merge_kind": kind,
                       "merge_note": ""}], {"ranked_by": None})


def test_duplicates_said_in_other_words_are_merged_and_the_set_aside_wording_is_named():
    pair = stories(SAID_OTHERWISE)
    # no story keeps both wordings of one need: as an overlap there is no grounded merge
    overlap = cluster_merge(GroundedEngine(Config()), pair, edges(pair, "overlap"))
    assert overlap.kind == MergeKind.NONE and "see photos of the item" in overlap.note
    # as duplicates the one wording stands for the other, and the merge says which was set aside
    dup = cluster_merge(GroundedEngine(Config()), pair, edges(pair, "duplicate"))
    merge = dup.to_json()
    assert dup.kind == MergeKind.DETERMINISTIC and merge["text"] == SAID_OTHERWISE[0]
    assert merge["said_by_other_source"] == ["backlog.txt:2's means 'see photos of the item' (said by backlog.txt:1)"]
    assert "Set aside, said by another story: backlog.txt:2&#x27;s means" in page_of(pair, merge, dup.kind, [])


def test_a_merge_that_keeps_every_wording_sets_nothing_aside():
    pair = stories(PAIRS[0])
    renew = cluster_merge(GroundedEngine(Config()), pair, edges(pair, "duplicate"))
    assert renew.same_need is False and renew.to_json()["said_by_other_source"] == []


def test_the_duplicates_inside_a_cluster_are_merged_when_no_story_keeps_every_member():
    members = stories(SAID_OTHERWISE + [OTHER_NEED])
    related = edges(members, "duplicate", among=members[:2])
    found = cluster_merge(GroundedEngine(Config()), members, related)
    merge = found.to_json()
    assert found.kind == MergeKind.DETERMINISTIC and merge["text"] == SAID_OTHERWISE[0]
    assert merge["merged"] == [s.id for s in members[:2]]
    assert "return" in merge["others"]  # why the third story stays: the need a whole merge would lose
    html = page_of(members, merge, found.kind, related)
    assert "Proposed merge of 2 of the 3 stories (the duplicates among them)" in html
    assert "The other stories stay as they are: no proposal kept every part of all 3 stories" in html
    # duplicates joined through a third (one pair of them only overlaps): the same group, merged once
    third = stories(SAID_OTHERWISE + ["As a buyer, I want to look at images of the goods."] + [OTHER_NEED])
    chained = edges(third, "overlap")
    for e in chained:
        if {e["a"], e["b"]} in ({third[0].id, third[1].id}, {third[1].id, third[2].id}):
            e["relation"] = "duplicate"
    found = cluster_merge(GroundedEngine(Config()), third, chained)
    assert found.kind == MergeKind.DETERMINISTIC and found.to_json()["merged"] == [s.id for s in third[:3]]
    # with no duplicates inside, there is still no merge, and it says why
    apart = cluster_merge(GroundedEngine(Config()), members, edges(members, "overlap"))
    assert apart.kind == MergeKind.NONE and apart.to_json() is None


def test_only_clusters_whose_every_pair_is_a_duplicate_may_set_a_wording_aside():
    dup = {"a": "1", "b": "2", "similarity": 0.9, "relation": "duplicate"}
    same = {**dup, "relation": "same-text"}
    overlap = {**dup, "relation": "overlap"}
    assert only_duplicates([dup, same]) and not only_duplicates([dup, overlap]) and not only_duplicates([])


def test_duplicates_with_two_reasons_keep_both_benefits_and_the_page_says_why():
    """Duplicates in other words (no one story keeps both means) that give two different reasons: the
    benefits' judge (shared words here, with no model) keeps both, and the merge and its page say why."""
    from storytransformer.similarity.needs import SameNeed

    pair = stories(["As a member, I want to renew a borrowed book online, so that I do not pay a late fee.",
                    "As a member, I want to extend my loan on the website, so that I can keep reading it."])
    dup = cluster_merge(GroundedEngine(Config()), pair, edges(pair, "duplicate"), SameNeed())
    merge = dup.to_json()
    assert dup.kind == MergeKind.DETERMINISTIC, dup.note
    assert "late fee" in merge["text"] and "keep reading it" in merge["text"], merge["text"]
    assert not any("ends" in x for x in merge["said_by_other_source"])
    assert merge["benefits_kept_apart"] == ["backlog.txt:1's 'I do not pay a late fee' and backlog.txt:2's "
                                            "'I can keep reading it'"]
    assert "Both benefits kept, they state different goals: backlog.txt:1" in page_of(pair, merge, dup.kind, [])
    # a judge that finds them alike writes one of them, and nothing is listed as kept apart
    alike = cluster_merge(GroundedEngine(Config()), pair, edges(pair, "duplicate"), SameNeed(lambda a, k, *means: True))
    assert alike.to_json()["benefits_kept_apart"] == []

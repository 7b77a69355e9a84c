"""The real model over real backlogs: neighbours, classification, incremental updates, findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from storytransformer.config import Config, SimilarityConfig
from storytransformer.formats import read_source
from storytransformer.similarity.classify import Relation, classify
from storytransformer.similarity.index import SimilarityIndex

from .helpers import SUBSET, independent_pairs, labelled_pairs, story_at

pytestmark = pytest.mark.slow

# Paraphrase pairs labelled "duplicate" in labelled_pairs.tsv, inside SUBSET.
PARAPHRASES = [(fa, la, fb, lb) for label, fa, la, fb, lb in labelled_pairs()
               if label == "duplicate" and fa in SUBSET and fb in SUBSET]


def test_the_subset_has_labelled_paraphrases():
    assert len(PARAPHRASES) >= 4


@pytest.mark.parametrize("fa, la, fb, lb", PARAPHRASES)
def test_labelled_paraphrase_ranks_above_unrelated_stories(subset_index, subset_workspace, fa, la, fb, lb):
    a, b = story_at(subset_workspace, fa, la), story_at(subset_workspace, fb, lb)
    found = subset_index.neighbours(a, k=3)
    keys = [(n.story.file, n.story.id) for n in found]
    assert (b.file, b.id) in keys, [n.story.text for n in found]
    assert [n.score for n in found] == sorted((n.score for n in found), reverse=True)


def test_independently_labelled_pairs_in_the_subset_mostly_agree(subset_index, subset_workspace):
    """Pairs two annotators labelled (benchmarks/labels/pairs): a duplicate or overlap should be related, a
    related or unrelated pair not. A floor, not the tuned figure (benchmarks/similarity_quality.py)."""
    agree = total = 0
    for label, fa, la, fb, lb in independent_pairs():
        if fa not in SUBSET or fb not in SUBSET:
            continue
        a, b = story_at(subset_workspace, fa, la), story_at(subset_workspace, fb, lb)
        predicted = classify(subset_index.pair_scores((a.file, a.id), (b.file, b.id)), subset_index.thresholds)
        agree += (predicted is not Relation.UNRELATED) == (label in ("duplicate", "overlap"))
        total += 1
    assert total >= 20 and agree / total >= 0.75, (agree, total)


def test_free_text_query_finds_the_story_it_paraphrases(subset_index, subset_workspace):
    fa, la, fb, lb = PARAPHRASES[0]
    target = story_at(subset_workspace, fa, la)
    words = target.text.split()
    query = " ".join(words[:-1])  # the story without its last word: still closest to itself
    best = subset_index.neighbours(query, k=1)[0]
    assert best.story.text == target.text or best.story.id in {story_at(subset_workspace, fb, lb).id}


def pair_set(index: SimilarityIndex) -> set:
    out = set()
    for s, o, p in index.related():
        out.add((frozenset({(s.file, s.id, s.text), (o.file, o.id, o.text)}), p.relation))
    return out


def test_incremental_update_equals_full_rebuild(subset_workspace, embedder):
    stories = list(subset_workspace.stories())
    index = SimilarityIndex.build(stories, SimilarityConfig(), embedder=embedder)
    path = next(p for p in subset_workspace.files if Path(p).name == "g14-datahub.txt")
    source = subset_workspace.files[path]
    # Edit one story (replace), delete another, add a new one, then re-add a removed file.
    lines = list(source.lines)
    edited = 21  # 0-based line of a labelled paraphrase
    lines[edited] = lines[edited].replace("I want", "I would like")
    del lines[5]
    lines.append(lines[0].replace("Publisher", "Curator"))
    new_source = read_source(path, "\n".join(lines) + "\n", Config())
    index.remove_file(path)
    other = next(p for p in subset_workspace.files if p != path)
    index.remove_file(other)
    index.update(new_source.stories)
    index.update(subset_workspace.files[other].stories)
    expected_stories = [s for p, f in subset_workspace.files.items() if p != path for s in f.stories] + new_source.stories
    rebuilt = SimilarityIndex.build(expected_stories, SimilarityConfig(), embedder=embedder)
    assert len(index) == len(rebuilt) == len(expected_stories)
    assert pair_set(index) == pair_set(rebuilt)
    assert {c.representative.id for c in index.clusters()} == {c.representative.id for c in rebuilt.clusters()}


def test_replacing_a_story_with_the_same_text_keeps_one_entry(subset_index, subset_workspace):
    s = next(subset_workspace.stories())
    n = len(subset_index)
    subset_index.update([s])
    assert len(subset_index) == n


def test_clusters_have_medoid_representatives(subset_index):
    clusters = subset_index.clusters()
    assert clusters
    for c in clusters:
        assert len(c) >= 2 and c.stories[0] is c.representative
        assert len({(s.file, s.id) for s in c.stories}) == len(c)
    assert [len(c) for c in clusters] == sorted((len(c) for c in clusters), reverse=True)


def test_bad_input_is_handled(embedder, tmp_path):
    """Empty, one-word, 5,000-word, non-English and 1,000-fold repeated stories: no crash, bounded."""
    long_story = "As a user, I want to " + " ".join(["export the quarterly report"] * 1250) + "."
    lines = ["As a user, I want to log in.", "Login", long_story,
             "Als Benutzer möchte ich mich anmelden, damit ich meine Daten sehe.",
             "作为用户，我想登录系统。"] + ["As a visitor, I want to search the catalogue."] * 1000
    source = read_source(str(tmp_path / "bad.txt"), "\n".join(lines) + "\n", Config())
    index = SimilarityIndex.build(source.stories, SimilarityConfig(), embedder=embedder)
    assert len(index) == len(source.stories)
    assert int(index._active.sum()) == 6  # six distinct texts: the 1,000 repeats share one slot
    assert index.neighbours("", k=3) is not None
    german = index.neighbours("Als Benutzer möchte ich mich anmelden", k=1)[0]
    assert "anmelden" in german.story.text
    repeated = [c for c in index.clusters() if len(c) == 1000]
    assert len(repeated) == 1


def test_pairs_after_small_edits_equal_a_rebuild(subset_workspace, embedder):
    """pairs() searches only from changed slots after a few edits; the result matches a rebuild."""
    stories = list(subset_workspace.stories())
    cfg = SimilarityConfig(max_neighbours=1000)  # no crowded rows, so the equality is exact
    index = SimilarityIndex.build(stories, cfg, embedder=embedder)
    before = pair_set(index)
    path = next(p for p in subset_workspace.files if Path(p).name == "g28-zooniverse.txt")
    lines = list(subset_workspace.files[path].lines)
    lines[8] = lines[8].replace("I want", "I would like")  # one side of a labelled paraphrase
    lines[2] = lines[1]  # a line becomes an exact copy of the one above
    edited = read_source(path, "\n".join(lines) + "\n", Config())
    index.remove_file(path)
    index.update(edited.stories)
    assert index._pairs is not None and index._dirty  # the incremental path is taken
    after = pair_set(index)
    expected = [s for p, f in subset_workspace.files.items() if p != path for s in f.stories] + edited.stories
    assert after == pair_set(SimilarityIndex.build(expected, cfg, embedder=embedder))
    assert after != before

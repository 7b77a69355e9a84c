"""The near-best margin with the real model: a third story nearer to one of two duplicates turns them
into an overlap, and removing it turns them back, through the incremental index exactly as a rebuild."""

from __future__ import annotations

import pytest

from storytransformer.config import Config, SimilarityConfig
from storytransformer.formats import read_source
from storytransformer.similarity.classify import Relation
from storytransformer.similarity.index import SimilarityIndex

BORROW = "As a member, I want to reserve and borrow books, so that I can keep borrowing books from the library."
EBOOKS = "As a member, I want to reserve books and borrow e-books, so that I can keep borrowing books from the library."
NEARER = "As a member, I want to reserve and borrow library books, so that I can keep borrowing books from the library."


def stories(tmp_path, name, *lines):
    return read_source(str(tmp_path / name), "\n".join(lines) + "\n", Config()).stories


def relation(index, a, b):
    found = {frozenset((s.text, o.text)): p.relation for s, o, p in index.related()}
    return found.get(frozenset((a, b)), Relation.UNRELATED)


@pytest.mark.slow
def test_a_nearer_third_story_turns_a_duplicate_into_an_overlap(tmp_path, embedder):
    pair = stories(tmp_path, "a.txt", BORROW, EBOOKS)
    index = SimilarityIndex.build(pair, SimilarityConfig(), embedder=embedder)
    assert relation(index, BORROW, EBOOKS) is Relation.DUPLICATE

    third = stories(tmp_path, "b.txt", NEARER)
    index.update(third)  # the incremental path: one changed slot
    assert relation(index, BORROW, EBOOKS) is Relation.OVERLAP
    assert relation(index, BORROW, NEARER) is Relation.DUPLICATE
    rebuilt = SimilarityIndex.build(pair + third, SimilarityConfig(), embedder=embedder)
    assert relation(rebuilt, BORROW, EBOOKS) is Relation.OVERLAP

    index.remove_file(third[0].file)  # the nearest neighbour of BORROW goes away
    assert relation(index, BORROW, EBOOKS) is Relation.DUPLICATE
    # The figure shown never depends on the neighbours.
    a, b = pair
    before = index.pair_scores((a.file, a.id), (b.file, b.id)).similarity
    assert before == pytest.approx(rebuilt.pair_scores((a.file, a.id), (b.file, b.id)).similarity, abs=1e-6)
    assert index.neighbours(BORROW, k=1)[0].score == pytest.approx(before, abs=1e-6)

"""Pair classification and the lexical side, without the model."""

from __future__ import annotations

import pytest

from storytransformer.config import SimilarityConfig
from storytransformer.similarity.classify import PairScores, Relation, Thresholds, classify
from storytransformer.similarity.compared_parts import content_lemmas, jaccard, lemma

T = Thresholds(duplicate=0.85, overlap=0.6, same_goal=0.7, role=0.7, ends=0.7, lexical_weight=0.3)


def scores(means=1.0, lexical=1.0, role=1.0, ends=None, whole=0.9):
    return PairScores(whole=whole, means=means, means_lexical=lexical, role=role, ends=ends)


def test_same_role_same_means_is_a_duplicate():
    assert classify(scores(means=0.95, lexical=0.8, ends=0.9), T) is Relation.DUPLICATE


def test_same_means_for_another_benefit_is_an_overlap():
    assert classify(scores(means=1.0, lexical=1.0, ends=0.3), T) is Relation.OVERLAP


def test_missing_ends_do_not_block_a_duplicate():
    assert classify(scores(means=0.95, lexical=0.9, ends=None), T) is Relation.DUPLICATE


def test_partly_shared_means_is_an_overlap():
    # 0.7 * 0.8 + 0.3 * 0.4 = 0.68: above overlap, below duplicate
    assert classify(scores(means=0.8, lexical=0.4), T) is Relation.OVERLAP


def test_another_role_with_the_same_means_is_same_goal():
    assert classify(scores(means=0.98, lexical=1.0, role=0.3), T) is Relation.SAME_GOAL


def test_another_role_with_weakly_similar_means_is_unrelated():
    assert classify(scores(means=0.6, lexical=0.2, role=0.3), T) is Relation.UNRELATED


def test_missing_role_counts_as_same_role():
    assert classify(scores(means=0.95, lexical=1.0, role=None), T) is Relation.DUPLICATE


def test_lexical_overlap_separates_near_identical_embeddings():
    # "export as HTML" vs "export as CSV": cosine high, lemmas differ
    s = scores(means=0.9, lexical=0.33)
    assert s.means_score(T) == pytest.approx(0.7 * 0.9 + 0.3 * 0.33)
    assert classify(s, T) is Relation.OVERLAP


def test_candidate_floor_is_exact_bound():
    # A means cosine below the floor cannot reach the lowest threshold even with full lexical overlap.
    floor = T.candidate_floor
    below = scores(means=floor - 0.01, lexical=1.0, role=1.0)
    assert below.means_score(T) < min(T.overlap, T.same_goal)
    at = scores(means=floor + 1e-6, lexical=1.0)
    assert at.means_score(T) >= min(T.overlap, T.same_goal)


def test_thresholds_come_from_the_config():
    cfg = SimilarityConfig(duplicate_threshold=0.95, overlap_threshold=0.75, role_threshold=0.5, lexical_weight=0.0)
    t = Thresholds.of(cfg)
    assert (t.duplicate, t.overlap, t.role, t.lexical_weight) == (0.95, 0.75, 0.5, 0.0)
    assert Thresholds.of(SimilarityConfig()) == Thresholds()  # defaults agree with the config's


@pytest.mark.parametrize("words, same", [
    (("uploads", "uploading", "uploaded", "upload"), True),
    (("stories", "story"), True),
    (("stored", "storing", "store"), True),
    (("applied", "apply"), True),
    (("mapped", "map"), True),
    (("export", "import"), False),
])
def test_lemma_conflates_inflections_only(words, same):
    assert (len({lemma(w) for w in words}) == 1) is same


def test_content_lemmas_drop_template_and_stop_words():
    assert content_lemmas("As a user, I want to be able to upload my datasets") == {"user", "upload", "dataset"}


def test_jaccard():
    a, b = frozenset({"x", "y"}), frozenset({"y", "z"})
    assert jaccard(a, b) == pytest.approx(1 / 3)
    assert jaccard(frozenset(), b) == 0.0


def test_vectorised_classification_agrees_with_classify():
    import numpy as np

    from storytransformer.similarity.classify import ORDER, classify_many

    rng = np.random.default_rng(0)
    n = 5000
    means, lexical = rng.uniform(0.3, 1, n), rng.uniform(0, 1, n)
    role, ends = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    role[rng.random(n) < 0.2] = np.nan
    ends[rng.random(n) < 0.4] = np.nan
    whole = rng.uniform(0.5, 1, n)
    codes = classify_many(means, lexical, role, ends, T, whole=whole)
    for i in range(n):
        s = PairScores(whole=whole[i], means=means[i], means_lexical=lexical[i],
                       role=None if np.isnan(role[i]) else role[i], ends=None if np.isnan(ends[i]) else ends[i])
        assert ORDER[codes[i]] is classify(s, T), i
    assert len(set(codes.tolist())) == 4  # every relation occurs


@pytest.mark.parametrize("field, value, message", [
    ("lexical_weight", 1.5, "similarity.lexical_weight' must be between 0 and 1"),
    ("role_threshold", -0.1, "similarity.role_threshold' must be between 0 and 1"),
    ("max_neighbours", 0, "similarity.max_neighbours' must be at least 1"),
    ("quantize", "int4", "similarity.quantize' must be none or int8"),
])
def test_bad_settings_name_the_key(field, value, message):
    from storytransformer.config import ConfigError

    cfg = SimilarityConfig()
    setattr(cfg, field, value)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        Thresholds.of(cfg)

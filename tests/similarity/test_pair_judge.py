"""The learned pair judge: its coefficients are reproducible, its bound is a bound, and the index,
`pair_scores` and the incremental findings decide every pair alike when it is on."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from storytransformer.similarity import judge_weights
from storytransformer.similarity.classify import ORDER, PairScores, Relation, Thresholds, classify, classify_many
from storytransformer.similarity.compared_parts import means_relation
from storytransformer.similarity.pair_judge import (FEATURES, LOGIT_CUTS, feature_matrix, logits, optimistic_logits,
                                                    probabilities)

from .helpers import assert_refit_matches

ROOT = Path(__file__).resolve().parents[2]
JUDGE = Thresholds(judge=True)


def _random_rows(n: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    whole = rng.uniform(0.6, 1.0, n)
    means = rng.uniform(0.3, 1.0, n)
    lexical = rng.uniform(0, 1, n)
    role = np.where(rng.random(n) < 0.2, np.nan, rng.uniform(0.2, 1.0, n))
    ends = np.where(rng.random(n) < 0.4, np.nan, rng.uniform(0.0, 1.0, n))
    gap = np.where(rng.random(n) < 0.7, 0.0, -rng.uniform(0, 0.2, n))
    z = np.where(rng.random(n) < 0.2, np.nan, rng.uniform(0, 6, n))
    contained, sibling = rng.random(n) < 0.15, rng.random(n) < 0.1
    words = np.column_stack([rng.random(n) < 0.5, rng.uniform(0, 1, n), rng.uniform(0.2, 1, n), rng.uniform(0, 1, n)])
    return whole, means, lexical, role, ends, gap, z, contained, sibling, words.astype(np.float64)


def test_weights_name_the_features_in_order():
    assert tuple(judge_weights.FEATURES) == FEATURES
    assert len(judge_weights.COEF_DUPLICATE) == len(judge_weights.COEF_MERGE) == len(FEATURES)
    assert 0 < judge_weights.DUPLICATE_CUT < 1 and 0 < judge_weights.MERGE_CUT < 1


def test_more_similar_never_lowers_either_probability():
    # The fit keeps these coefficients >= 0: a near-identical pair is never judged less of a duplicate
    # than a looser one with the same words.
    for name in ("whole", "means", "means_lexical", "role", "ends", "gap", "contained", "object_overlap",
                 "length_ratio", "coverage"):
        i = FEATURES.index(name)
        assert judge_weights.COEF_DUPLICATE[i] >= 0 and judge_weights.COEF_MERGE[i] >= 0, name
    x = feature_matrix([0.80, 0.95], [0.8, 0.95], [0.5, 0.5], [1.0, 1.0], [np.nan, np.nan], [0.0, 0.0], [0, 0],
                       np.array([[1, 0.5, 1, 0.7]] * 2, np.float64))
    p = probabilities(x)
    assert (p[1] >= p[0]).all()


def test_optimistic_bound_is_never_below_the_real_log_odds():
    whole, means, lexical, role, ends, gap, _, contained, _, words = _random_rows(2000)
    full = logits(feature_matrix(whole, means, lexical, role, ends, gap, contained, words))
    bound = optimistic_logits(feature_matrix(whole, means, lexical, role, ends, gap))
    assert (bound >= full - 1e-9).all()


def test_classify_many_agrees_with_classify_under_the_judge():
    whole, means, lexical, role, ends, gap, z, contained, sibling, words = _random_rows(600, seed=11)
    codes = classify_many(means, lexical, role, ends, JUDGE, whole=whole, gap=gap, z=z, contained=contained,
                          sibling=sibling, words=words)
    seen = set()
    for i in range(len(whole)):
        s = PairScores(whole=whole[i], means=means[i], means_lexical=lexical[i],
                       role=None if np.isnan(role[i]) else role[i], ends=None if np.isnan(ends[i]) else ends[i],
                       gap=gap[i], z=None if np.isnan(z[i]) else z[i], contained=bool(contained[i]),
                       sibling=bool(sibling[i]), words=tuple(words[i]))
        rel = classify(s, JUDGE)
        assert ORDER[codes[i]] is rel, (i, s)
        seen.add(rel)
    assert {Relation.DUPLICATE, Relation.UNRELATED} <= seen  # the sample exercises the decision


def test_the_judge_keeps_the_whole_gate_the_sibling_veto_and_the_stand_out_test():
    x = dict(means=0.9, means_lexical=0.2, role=1.0, gap=0.0, words=(0.0, 0.2, 0.8, 0.3))
    assert classify(PairScores(whole=0.93, **x), JUDGE) is Relation.DUPLICATE
    assert classify(PairScores(whole=JUDGE.whole - 0.01, **x), JUDGE) is Relation.UNRELATED
    assert classify(PairScores(whole=0.93, sibling=True, **x), JUDGE) is Relation.UNRELATED
    assert classify(PairScores(whole=0.93, z=JUDGE.distinct - 1, **x), JUDGE) is Relation.OVERLAP
    # another role lowers both probabilities: the same pair asked by someone else is no duplicate
    assert classify(PairScores(whole=0.93, **{**x, "role": 0.1}), JUDGE) is Relation.UNRELATED
    assert Thresholds().judge is False  # off by default: the threshold rule decides


def test_means_relation_reads_the_action_and_its_object():
    same_verb, obj, ratio, coverage = means_relation("see the sections on roles", "see the sections on costing")
    assert same_verb == 1.0 and 0 < obj < 1 and ratio == 1.0 and coverage == pytest.approx(2 / 3)
    same_verb, obj, _, coverage = means_relation("renew a borrowed book online", "extend the loan of a book on the website")
    assert same_verb == 0.0 and coverage < 1
    assert means_relation("upload files", "upload files through the web interface")[3] == 1.0  # contained
    assert means_relation("", "upload files") == (0.0, 0.0, 0.0, 0.0)


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("similarity_judge", ROOT / "benchmarks" / "similarity_judge.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def test_rebuilding_from_the_tune_labels_reproduces_the_shipped_coefficients(real_backlogs, embedder):
    pytest.importorskip("scipy")
    bench = _load_benchmark()
    pairs, scores, _ = bench.scored_pairs()
    b_scores, by, _ = bench.backlog_candidates("tune")
    x, bx = bench.features(scores), bench.features(b_scores)
    model = bench.fit(pairs, x, bx, by)
    tune = np.vstack([x[[p["part"] == "tune" for p in pairs]], bx])
    assert_refit_matches(model, tune, (("duplicate", judge_weights.INTERCEPT_DUPLICATE, judge_weights.COEF_DUPLICATE,
                                         judge_weights.DUPLICATE_CUT),
                                        ("merge", judge_weights.INTERCEPT_MERGE, judge_weights.COEF_MERGE,
                                         judge_weights.MERGE_CUT)))
    # the held-out pairs were not used: dropping them changes nothing
    tune_only = [p for p in pairs if p["part"] == "tune"]
    keep = [i for i, p in enumerate(pairs) if p["part"] == "tune"]
    again = bench.fit(tune_only, bench.features([scores[i] for i in keep]), bench.features(b_scores), by)
    assert np.allclose(again["duplicate"]["coef"], model["duplicate"]["coef"])


def test_index_pairs_agree_with_pair_scores_under_the_judge(subset_workspace, embedder):
    from storytransformer.config import SimilarityConfig
    from storytransformer.similarity.index import SimilarityIndex

    cfg = SimilarityConfig(judge=True)
    index = SimilarityIndex.build(subset_workspace.stories(), cfg, embedder=embedder)
    assert index.thresholds.judge
    pairs = index.pairs()
    assert pairs, "the subset has related pairs under the judge"
    for p in pairs[:60]:
        a, b = index.members(p.a)[0], index.members(p.b)[0]
        sc = index.pair_scores((a.file, a.id), (b.file, b.id))
        assert sc.words is not None
        assert classify(sc, index.thresholds) is p.relation
        assert sc.similarity == pytest.approx(p.similarity, abs=1e-5)
    related = {(p.a, p.b): p.relation for p in pairs}
    # every candidate pair, related or not, gets from pair_scores the verdict the index gave it: the
    # word-level features skipped where the bound says unrelated never change a verdict
    a, b = index._cand[0], index._cand[1]
    assert len(a) > len(pairs)  # some candidates are judged unrelated
    for x, y in zip(a.tolist(), b.tolist()):
        s, o = index.members(x)[0], index.members(y)[0]
        got = classify(index.pair_scores((s.file, s.id), (o.file, o.id)), index.thresholds)
        assert got is related.get((x, y), Relation.UNRELATED), (s.text, o.text)

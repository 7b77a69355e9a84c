"""The judge's second model (similarity.second_model): off by default, a bad path named, the bound
still a bound, and with the model installed the index, `pair_scores` and a warm run agree while the
model embeds only the texts of pairs near a cut.

Tests that need the model find it at the install location of `scripts/install.sh --second-judge`
(<environment>/share/storytransformer/all-mpnet-base-v2) or in $STORYTRANSFORMER_SECOND_MODEL, and skip
with a message when it is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from storytransformer.config import ConfigError, SimilarityConfig
from storytransformer.similarity import pair_judge

from .helpers import assert_refit_matches
from storytransformer.similarity.classify import ORDER, PairScores, Relation, Thresholds, classify, classify_many
from storytransformer.similarity.embedding_model import ModelError

from .test_pair_judge import _random_rows

needs_weights = pytest.mark.skipif(not pair_judge.HAS_SECOND, reason="judge_weights.py has no second-model set")


def second_model_dir() -> Path | None:
    env = os.environ.get("STORYTRANSFORMER_SECOND_MODEL")
    path = Path(env) if env else Path(sys.prefix) / "share" / "storytransformer" / "all-mpnet-base-v2"
    return path if (path / "modules.json").is_file() else None


@pytest.fixture(scope="module")
def model_dir() -> Path:
    path = second_model_dir()
    if path is None:
        pytest.skip("the second model is not installed: scripts/install.sh --second-judge "
                    "(or set STORYTRANSFORMER_SECOND_MODEL to an all-mpnet-base-v2 directory)")
    return path


def test_off_by_default_and_on_with_the_setting():
    assert SimilarityConfig().second_model == ""
    t = Thresholds.of(SimilarityConfig())
    assert not t.second and not t.judge
    t = Thresholds.of(SimilarityConfig(second_model="some/dir"))
    assert t.second and t.judge  # the second model is a judge feature: it turns the judge on


def test_with_the_second_model_the_whole_gate_is_its_own_setting():
    """The second model judges pairs the packaged model alone puts below its gate (0.60, not 0.75)."""
    alone = Thresholds.of(SimilarityConfig())
    second = Thresholds.of(SimilarityConfig(second_model="some/dir"))
    assert alone.whole == SimilarityConfig().whole_threshold
    assert second.whole == SimilarityConfig().second_whole_threshold < alone.whole
    assert Thresholds.of(SimilarityConfig(second_model="d", second_whole_threshold=0.7, whole_threshold=0.5)).whole == 0.7
    with pytest.raises(ConfigError, match=r"similarity\.second_whole_threshold' must be between 0 and 1"):
        Thresholds.of(SimilarityConfig(second_model="d", second_whole_threshold=1.5))


def test_a_bad_path_names_the_setting(tmp_path):
    from storytransformer.similarity.index import SimilarityIndex

    with pytest.raises(ModelError, match=r"similarity\.second_model.*not a directory"):
        SimilarityIndex.build([], SimilarityConfig(second_model=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"similarity\.second_model.*no modules\.json"):
        SimilarityIndex.build([], SimilarityConfig(second_model=str(tmp_path / "empty")))


@needs_weights
def test_second_weights_name_their_features_and_are_monotone():
    from storytransformer.similarity import judge_weights as W

    assert tuple(W.FEATURES_SECOND) == pair_judge.FEATURES_SECOND
    assert len(W.COEF_DUPLICATE_SECOND) == len(W.COEF_MERGE_SECOND) == len(pair_judge.FEATURES_SECOND)
    for name in ("whole", "means", "second_whole", "second_means"):
        i = pair_judge.FEATURES_SECOND.index(name)
        assert W.COEF_DUPLICATE_SECOND[i] >= 0 and W.COEF_MERGE_SECOND[i] >= 0, name


@needs_weights
def test_bounds_with_the_second_model_are_never_below_the_real_log_odds():
    whole, means, lexical, role, ends, gap, _, contained, _, words = _random_rows(2000, seed=3)
    second = np.random.default_rng(4).uniform(-1, 1, (2000, 2))
    full = pair_judge.logits(pair_judge.feature_matrix(whole, means, lexical, role, ends, gap, contained, words, second))
    loose = pair_judge.optimistic_logits(pair_judge.feature_matrix(whole, means, lexical, role, ends, gap), second=True)
    tight = pair_judge.optimistic_logits(pair_judge.feature_matrix(whole, means, lexical, role, ends, gap, contained,
                                                                   words), second=True, words_known=True)
    assert (loose >= tight - 1e-9).all() and (tight >= full - 1e-9).all()
    assert (tight < loose - 1e-6).any()  # the real words tighten it


@needs_weights
def test_classify_many_agrees_with_classify_with_the_second_model():
    t = Thresholds(judge=True, second=True)
    whole, means, lexical, role, ends, gap, z, contained, sibling, words = _random_rows(600, seed=12)
    second = np.random.default_rng(13).uniform(0.2, 1.0, (600, 2))
    codes = classify_many(means, lexical, role, ends, t, whole=whole, gap=gap, z=z, contained=contained,
                          sibling=sibling, words=words, second=second)
    seen = set()
    for i in range(len(whole)):
        s = PairScores(whole=whole[i], means=means[i], means_lexical=lexical[i],
                       role=None if np.isnan(role[i]) else role[i], ends=None if np.isnan(ends[i]) else ends[i],
                       gap=gap[i], z=None if np.isnan(z[i]) else z[i], contained=bool(contained[i]),
                       sibling=bool(sibling[i]), words=tuple(words[i]), second=tuple(second[i]))
        rel = classify(s, t)
        assert ORDER[codes[i]] is rel, (i, s)
        seen.add(rel)
    assert {Relation.DUPLICATE, Relation.UNRELATED} <= seen
    # the second cosines change verdicts: the same rows with them at their lowest are judged less related
    low = classify_many(means, lexical, role, ends, t, whole=whole, gap=gap, z=z, contained=contained,
                        sibling=sibling, words=words, second=np.zeros_like(second))
    assert (low == 0).sum() > (codes == 0).sum()


@needs_weights
def test_index_asks_the_second_model_only_near_a_cut_and_a_warm_run_embeds_nothing(model_dir, subset_workspace,
                                                                                   embedder, tmp_path):
    from storytransformer.similarity.embedder import Embedder
    from storytransformer.similarity.index import SimilarityIndex

    cfg = SimilarityConfig(second_model=str(model_dir))
    stories = list(subset_workspace.stories())[:400]
    second = Embedder(str(model_dir), cache_path=tmp_path / "second.msgpack")
    index = SimilarityIndex(embedder, Thresholds.of(cfg), second=second)
    index.update(stories)
    pairs = index.pairs()
    assert index.thresholds.second and pairs
    a, b = index._cand[0], index._cand[1]
    asked = ~np.isnan(index._cand[11][:, 0])
    assert asked.any() and not asked.all(), "only candidates near a cut are embedded by the second model"
    assert second.computed <= 4 * asked.sum()
    related = {(p.a, p.b): p.relation for p in pairs}
    for x, y in zip(a.tolist(), b.tolist()):  # the pair query decides every candidate as the index did
        s, o = index.members(x)[0], index.members(y)[0]
        sc = index.pair_scores((s.file, s.id), (o.file, o.id))
        assert sc.second is not None
        assert classify(sc, index.thresholds) is related.get((x, y), Relation.UNRELATED), (s.text, o.text)
    # an edit (the daemon's incremental refresh) goes through the same path: a story of a related pair
    # removed and put back gives the same related pairs, by text
    def by_text(ix):
        return sorted((ix.members(p.a)[0].text, ix.members(p.b)[0].text, p.relation.value) for p in ix.pairs())

    before = by_text(index)
    gone = index.members(pairs[0].a)[0]
    index.remove([(gone.file, gone.id)])
    assert all(gone.text not in (x, y) for x, y, _ in by_text(index))
    index.update([gone])
    assert by_text(index) == before
    assert index.save_cache()
    warm = Embedder(str(model_dir), cache_path=tmp_path / "second.msgpack")
    again = SimilarityIndex(embedder, Thresholds.of(cfg), second=warm)
    again.update(stories)
    assert [(p.a, p.b, p.relation) for p in again.pairs()] == [(p.a, p.b, p.relation) for p in pairs]
    assert warm.computed == 0  # the same texts come from the cache, keyed by the second model
    # `similar` goes through the same judge: the top neighbour of a related story carries the second cosines
    p = next(p for p in pairs if p.relation is Relation.DUPLICATE) if any(
        p.relation is Relation.DUPLICATE for p in pairs) else pairs[0]
    story = index.members(p.a)[0]
    top = index.neighbours(story, k=3)
    assert any(n.scores.second is not None for n in top)


@needs_weights
def test_rebuilding_the_second_set_from_the_tune_labels_reproduces_it(model_dir, real_backlogs, embedder):
    # Slow cold (the second model embeds every labelled pair's texts and the tune backlogs' candidates).
    pytest.importorskip("scipy")
    from storytransformer.similarity import judge_weights as W

    from .test_pair_judge import _load_benchmark

    bench = _load_benchmark()
    pairs, scores, _ = bench.scored_pairs(second_model=str(model_dir))
    b_scores, by, _ = bench.backlog_candidates("tune", second_model=str(model_dir))
    x, bx = bench.features(scores, True), bench.features(b_scores, True)
    model = bench.fit(pairs, x, bx, by)
    tune = np.vstack([x[[p["part"] == "tune" for p in pairs]], bx])
    assert_refit_matches(model, tune, (("duplicate", W.INTERCEPT_DUPLICATE_SECOND, W.COEF_DUPLICATE_SECOND,
                                         W.DUPLICATE_CUT_SECOND),
                                        ("merge", W.INTERCEPT_MERGE_SECOND, W.COEF_MERGE_SECOND, W.MERGE_CUT_SECOND)))

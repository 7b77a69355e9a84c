"""The learned pair judge: how likely annotators are to call two stories one need, from their scores.

Threshold grids over the cosines stopped improving on the labelled pairs (docs/benchmarks/
similarity_tuning.md): a restatement in other words and a template sibling with one object swapped
have the same cosines. What tells them apart is how the scores combine with the words: the same
leading verb on another object is a sibling, another verb on the same object a restatement. Two
logistic regressions over the features below, fitted on the tune pairs only by
``benchmarks/similarity_judge.py`` (coefficients in :mod:`.judge_weights`, plain numbers, no
pickled model), give the probability that a pair is a duplicate and that it is worth merging
(duplicate or overlap). Scoring is one small matrix-vector product per candidate pair.

Every feature is in a known range, so the index can bound a pair's probability before computing
its word-level features (:func:`optimistic_logits`) and run them only on pairs that may be related.
"""

from __future__ import annotations

import numpy as np

from . import judge_weights as W

# The order of the columns of a feature row; judge_weights.FEATURES must be the same.
FEATURES = ("whole", "means", "means_lexical", "role", "no_role", "ends", "no_ends", "gap",
            "contained", "same_verb", "object_overlap", "length_ratio", "coverage")
# Word-level features, all in [0, 1]: computed only for pairs that may be related.
WORD_FEATURES = ("contained", "same_verb", "object_overlap", "length_ratio", "coverage")
_WORD_COLUMNS = np.array([FEATURES.index(f) for f in WORD_FEATURES])

if tuple(W.FEATURES) != FEATURES:  # pragma: no cover - caught by tests/similarity/test_pair_judge.py
    raise ImportError("judge_weights.FEATURES does not match pair_judge.FEATURES: rebuild with benchmarks/similarity_judge.py --write")

# With ``similarity.second_model``: the cosines of a second embedding model (whole stories, means)
# as two more columns, fitted with their own coefficients and cuts (judge_weights' *_SECOND set).
SECOND_FEATURES = ("second_whole", "second_means")
FEATURES_SECOND = FEATURES + SECOND_FEATURES
HAS_SECOND = hasattr(W, "COEF_DUPLICATE_SECOND")
if HAS_SECOND and tuple(W.FEATURES_SECOND) != FEATURES_SECOND:  # pragma: no cover
    raise ImportError("judge_weights.FEATURES_SECOND does not match pair_judge: rebuild with benchmarks/similarity_judge.py --write")

_COEF = np.array([W.COEF_DUPLICATE, W.COEF_MERGE], np.float64)  # 2 x features
_INTERCEPT = np.array([W.INTERCEPT_DUPLICATE, W.INTERCEPT_MERGE], np.float64)
DUPLICATE_CUT = W.DUPLICATE_CUT  # probabilities at or above these decide (chosen on the tune pairs)
MERGE_CUT = W.MERGE_CUT
if HAS_SECOND:
    _COEF2 = np.array([W.COEF_DUPLICATE_SECOND, W.COEF_MERGE_SECOND], np.float64)
    _INTERCEPT2 = np.array([W.INTERCEPT_DUPLICATE_SECOND, W.INTERCEPT_MERGE_SECOND], np.float64)


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


LOGIT_CUTS = np.array([_logit(DUPLICATE_CUT), _logit(MERGE_CUT)])
LOGIT_CUTS_SECOND = (np.array([_logit(W.DUPLICATE_CUT_SECOND), _logit(W.MERGE_CUT_SECOND)]) if HAS_SECOND
                     else LOGIT_CUTS)


def _weights(columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coefficients, intercepts, logit cuts) for rows of ``columns`` features (with or without the second model)."""
    if columns == len(FEATURES):
        return _COEF, _INTERCEPT, LOGIT_CUTS
    if columns == len(FEATURES_SECOND) and HAS_SECOND:
        return _COEF2, _INTERCEPT2, LOGIT_CUTS_SECOND
    raise ValueError(f"no judge weights for {columns} features: rebuild judge_weights.py with "
                     "benchmarks/similarity_judge.py --second-judge DIR --write")


def logit_cuts(second: bool = False) -> np.ndarray:
    return _weights(len(FEATURES_SECOND) if second else len(FEATURES))[2]


def feature_matrix(whole, means, lexical, role, ends, gap, contained=None, words=None, second=None) -> np.ndarray:
    """Rows of :data:`FEATURES` for arrays of pairs (``nan`` where a role, ends or gap is unknown;
    ``words``: an (n, 4) array of :func:`.compared_parts.means_relation`, zeros when not given);
    rows of :data:`FEATURES_SECOND` when ``second`` (the second model's (n, 2) cosines) is given."""
    n = len(whole)
    x = np.zeros((n, len(FEATURES)), np.float64)
    role = np.asarray(role, np.float64)
    ends = np.asarray(ends, np.float64)
    gap = np.asarray(gap, np.float64)
    x[:, 0] = whole
    x[:, 1] = means
    x[:, 2] = lexical
    no_role = np.isnan(role)
    x[:, 3] = np.where(no_role, 1.0, role)
    x[:, 4] = no_role
    no_ends = np.isnan(ends)
    x[:, 5] = np.where(no_ends, 0.0, ends)
    x[:, 6] = no_ends
    with np.errstate(invalid="ignore"):
        x[:, 7] = np.where(np.isfinite(gap), np.minimum(gap, 0.0), 0.0)
    if contained is not None:
        x[:, 8] = contained
    if words is not None and len(words):
        x[:, 9:13] = words
    if second is not None:
        x = np.hstack([x, np.asarray(second, np.float64).reshape(n, 2)])
    return x


def logits(x: np.ndarray) -> np.ndarray:
    """(n, 2): the log-odds of duplicate and of merge-worthy (duplicate or overlap) per row."""
    coef, intercept, _ = _weights(x.shape[1])
    return x @ coef.T + intercept


def optimistic_logits(x: np.ndarray, second: bool = False, words_known: bool = False) -> np.ndarray:
    """:func:`logits` with every word-level feature at its most favourable value for each model: an
    upper bound, so a pair below both cuts here is unrelated whatever its words. ``x``: rows of
    :data:`FEATURES`; ``second``: bound the judge with the second model, whose two cosines (at most 1)
    are not known yet; ``words_known``: the word-level columns of ``x`` are real (a tighter bound)."""
    coef, intercept, _ = _weights(len(FEATURES_SECOND) if second else len(FEATURES))
    n = len(FEATURES)
    base = x[:, :n].copy()
    if not words_known:
        base[:, _WORD_COLUMNS] = 0.0
    out = base @ coef[:, :n].T + intercept
    if not words_known:
        out = out + np.maximum(coef[:, _WORD_COLUMNS], 0.0).sum(axis=1)
    if second:
        out = out + np.abs(coef[:, n:]).sum(axis=1)  # cosines lie in [-1, 1]
    return out


def verdicts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(duplicate, merge-worthy) booleans per row: each probability at or above its cut."""
    lg = logits(x)
    cuts = _weights(x.shape[1])[2]
    return lg[:, 0] >= cuts[0], lg[:, 1] >= cuts[1]


def probabilities(x: np.ndarray) -> np.ndarray:
    """(n, 2) probabilities of duplicate and merge-worthy."""
    return 1.0 / (1.0 + np.exp(-logits(x)))

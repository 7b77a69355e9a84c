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

_COEF = np.array([W.COEF_DUPLICATE, W.COEF_MERGE], np.float64)  # 2 x features
_INTERCEPT = np.array([W.INTERCEPT_DUPLICATE, W.INTERCEPT_MERGE], np.float64)
DUPLICATE_CUT = W.DUPLICATE_CUT  # probabilities at or above these decide (chosen on the tune pairs)
MERGE_CUT = W.MERGE_CUT


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


LOGIT_CUTS = np.array([_logit(DUPLICATE_CUT), _logit(MERGE_CUT)])


def feature_matrix(whole, means, lexical, role, ends, gap, contained=None, words=None) -> np.ndarray:
    """Rows of :data:`FEATURES` for arrays of pairs (``nan`` where a role, ends or gap is unknown;
    ``words``: an (n, 4) array of :func:`.compared_parts.means_relation`, zeros when not given)."""
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
    return x


def logits(x: np.ndarray) -> np.ndarray:
    """(n, 2): the log-odds of duplicate and of merge-worthy (duplicate or overlap) per row."""
    return x @ _COEF.T + _INTERCEPT


def optimistic_logits(x: np.ndarray) -> np.ndarray:
    """:func:`logits` with every word-level feature at its most favourable value for each model: an
    upper bound, so a pair below both cuts here is unrelated whatever its words."""
    base = x.copy()
    base[:, _WORD_COLUMNS] = 0.0
    out = base @ _COEF.T + _INTERCEPT
    return out + np.maximum(_COEF[:, _WORD_COLUMNS], 0.0).sum(axis=1)


def verdicts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(duplicate, merge-worthy) booleans per row: each probability at or above its cut."""
    lg = logits(x)
    return lg[:, 0] >= LOGIT_CUTS[0], lg[:, 1] >= LOGIT_CUTS[1]


def probabilities(x: np.ndarray) -> np.ndarray:
    """(n, 2) probabilities of duplicate and merge-worthy."""
    return 1.0 / (1.0 + np.exp(-logits(x)))

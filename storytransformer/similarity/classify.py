"""How two stories relate, from the similarities of their parts.

The one similarity figure a user sees (``similar``, ST603-ST605, the report) is
the cosine of the whole stories: it gates every relation. A duplicate must also
be *near the best*: neither story may have another neighbour clearly closer than
this one (the margin ``near_best``), the field's mutual-nearest-neighbour test,
which keeps "download files" from being a duplicate of "preview files" when a
real restatement of it exists. In a template-heavy backlog every story is close to
its siblings, so a duplicate must also *stand out* from each story's own neighbours:
its cosine is ``distinct`` standard deviations above the mean cosine of that story
to every other story of the workspace (a z-score; hubness reduction in the
field's terms), unless one story's means contains the other's. And two means that
differ by one swapped word ("by population" / "by GDP", "enable" / "disable") are
siblings, never duplicates (:func:`.compared_parts.one_word_sibling`), and so are two
means that lead with different operations ("apply a hold" / "remove a hold",
:func:`.compared_parts.other_operation`) or swap a short phrase ("in Excel" / "from a
Google Spreadsheet", :func:`.compared_parts.swapped_phrase`). ``means`` (the cosine of the means blended
with the overlap of their content lemmas) decides overlaps; the role decides who
asks, and the ends whether they want it for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


KEY = "tool.storytransformer.similarity.{}"


def check_settings(config) -> None:
    """Range checks for the similarity settings the core does not check itself."""
    from ..config import ConfigError

    for name in ("duplicate_threshold", "overlap_threshold", "same_goal_threshold", "role_threshold", "ends_threshold",
                 "lexical_weight", "whole_threshold", "second_whole_threshold", "near_best"):
        value = getattr(config, name, None)
        if value is not None and not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"'{KEY.format(name)}' must be between 0 and 1, not {value!r}")
    distinct = getattr(config, "distinct_threshold", None)
    if distinct is not None and not 0.0 <= float(distinct) <= 100.0:
        raise ConfigError(f"'{KEY.format('distinct_threshold')}' must be between 0 and 100, not {distinct!r}")
    for name in ("max_neighbours", "top_k", "batch_size"):
        value = getattr(config, name, None)
        if value is not None and int(value) < 1:
            raise ConfigError(f"'{KEY.format(name)}' must be at least 1, not {value!r}")
    second = getattr(config, "second_model", "")
    if not isinstance(second, str):
        raise ConfigError(f"'{KEY.format('second_model')}' must be a directory path (a string), not {second!r}")
    quantize = getattr(config, "quantize", "none")
    if quantize not in ("none", "int8"):
        raise ConfigError(f"'{KEY.format('quantize')}' must be none or int8, not {quantize!r}")


class Relation(str, Enum):
    DUPLICATE = "duplicate"  # same role, same means (and no different benefit)
    OVERLAP = "overlap"  # same role, overlapping means: a merge candidate
    SAME_GOAL = "same-goal"  # another role wants the same means
    UNRELATED = "unrelated"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Decision thresholds; defaults come from ``SimilarityConfig`` (tuned in docs/similarity.md)."""

    duplicate: float = 0.60
    overlap: float = 0.60
    same_goal: float = 0.50
    role: float = 0.50
    ends: float = 0.0
    lexical_weight: float = 0.0
    whole: float = 0.75  # the whole stories must be this close for any relation
    near_best: float = 0.03  # a duplicate is at most this far below either story's nearest neighbour
    distinct: float = 2.5  # a duplicate's cosine is this many standard deviations above each story's mean cosine
    # True: the learned pair judge (pair_judge.py) decides duplicate and merge-worthy above ``whole``;
    # ``duplicate``, ``overlap``, ``same_goal``, ``ends``, ``lexical_weight`` and ``near_best`` then play no
    # part. Off by default: on the held-out labels it trades recall for precision rather than winning
    # (docs/similarity.md, "The learned pair judge").
    judge: bool = False
    # True (``similarity.second_model`` set): the judge also weighs a second model's cosines of the pair
    # (pair_judge.FEATURES_SECOND); implies ``judge``.
    second: bool = False

    @staticmethod
    def of(config) -> "Thresholds":
        """From a ``SimilarityConfig`` (missing fields keep their defaults); a value out of range
        raises ConfigError naming the setting."""
        check_settings(config)
        d = Thresholds()
        names = {"duplicate": "duplicate_threshold", "overlap": "overlap_threshold", "same_goal": "same_goal_threshold",
                 "role": "role_threshold", "ends": "ends_threshold", "lexical_weight": "lexical_weight",
                 "whole": "whole_threshold", "near_best": "near_best", "distinct": "distinct_threshold"}
        second = bool(getattr(config, "second_model", ""))
        if second:  # the second model sees pairs the packaged model alone puts below its own gate
            names["whole"] = "second_whole_threshold"
        return Thresholds(**{f: float(getattr(config, key, getattr(d, f))) for f, key in names.items()},
                          judge=bool(getattr(config, "judge", d.judge)) or second, second=second)

    @property
    def candidate_floor(self) -> float:
        """The lowest means cosine that can still reach the lowest threshold (lexical overlap is at most 1)."""
        w = self.lexical_weight
        lowest = min(self.overlap, self.same_goal)
        return max(-1.0, (lowest - w) / (1 - w)) if w < 1 else -1.0


@dataclass(frozen=True, slots=True)
class PairScores:
    """Similarities of two stories; ``None`` where one of them lacks that part."""

    whole: float
    means: float  # cosine of the means (of the whole text when a means is missing)
    means_lexical: float  # Jaccard overlap of the content lemmas of the means
    role: float | None = None  # max(cosine, lemma overlap) of the roles
    ends: float | None = None
    # whole minus the closer of the two stories' nearest neighbours (0 when each is the other's nearest,
    # negative when another story is closer to one of them); None: not known, counts as nearest
    gap: float | None = None
    # how far the pair stands out: the smaller of the two stories' z-scores of ``whole`` against their
    # cosines to every other story (None: too few stories to know, counts as standing out)
    z: float | None = None
    contained: bool = False  # the content words of one means are all in the other's
    sibling: bool = False  # a swapped word or phrase, or another operation (compared_parts: *_sibling, ...)
    # compared_parts.means_relation of the two means (same verb, object overlap, length ratio, coverage);
    # None: not computed (zeros for the judge)
    words: tuple[float, float, float, float] | None = None
    # the second model's cosines (whole stories, means) when ``similarity.second_model`` is set and the
    # pair is near a cut; None: not computed (the judge then decides without them)
    second: tuple[float, float] | None = None

    @property
    def similarity(self) -> float:
        """The one figure shown for this pair everywhere: the cosine of the whole stories."""
        return self.whole

    def means_score(self, t: Thresholds) -> float:
        return (1 - t.lexical_weight) * self.means + t.lexical_weight * self.means_lexical

    def near_best(self, t: Thresholds) -> bool:
        return self.gap is None or self.gap >= -t.near_best - EPS

    def stands_out(self, t: Thresholds) -> bool:
        return self.contained or self.z is None or self.z >= t.distinct - EPS


def classify(s: PairScores, t: Thresholds) -> Relation:
    """The relation of a pair: the first of duplicate, overlap, same goal that its scores reach."""
    if t.judge:
        return judged(s, t)
    means = s.means_score(t)
    same_role = s.role is None or s.role >= t.role
    if s.whole < t.whole:
        return Relation.UNRELATED
    if s.sibling:
        return Relation.UNRELATED
    if same_role:
        if means >= t.duplicate and s.near_best(t) and s.stands_out(t):
            other_benefit = s.ends is not None and s.ends < t.ends
            return Relation.OVERLAP if other_benefit else Relation.DUPLICATE
        if means >= t.overlap:
            return Relation.OVERLAP
    elif means >= t.same_goal:
        return Relation.SAME_GOAL
    return Relation.UNRELATED


def judged(s: PairScores, t: Thresholds) -> Relation:
    """The relation the learned pair judge gives: duplicate when its duplicate probability reaches the
    cut and the pair stands out (the z-score test, read off the backlogs rather than the pairs);
    otherwise merge-worthy (either probability at its cut) is an overlap for the same role and the
    same goal for another; a one-word sibling and a pair below ``whole`` are unrelated."""
    from .pair_judge import feature_matrix, verdicts

    if s.whole < t.whole or s.sibling:
        return Relation.UNRELATED
    nan = float("nan")
    x = feature_matrix([s.whole], [s.means], [s.means_lexical], [nan if s.role is None else s.role],
                       [nan if s.ends is None else s.ends], [nan if s.gap is None else s.gap],
                       [float(s.contained)], None if s.words is None else np.array([s.words], np.float64),
                       np.array([s.second], np.float64) if t.second and s.second is not None else None)
    dup, merge = (bool(v[0]) for v in verdicts(x))
    if dup and s.stands_out(t):
        return Relation.DUPLICATE
    if dup or merge:
        return Relation.OVERLAP if s.role is None or s.role >= t.role else Relation.SAME_GOAL
    return Relation.UNRELATED


EPS = 1e-6  # a blocked matrix product and a matrix-vector product may differ in the last float32 bits


ORDER = (Relation.UNRELATED, Relation.DUPLICATE, Relation.OVERLAP, Relation.SAME_GOAL)


def classify_many(means: np.ndarray, lexical: np.ndarray, role: np.ndarray, ends: np.ndarray,
                  t: Thresholds, whole: np.ndarray | None = None, gap: np.ndarray | None = None,
                  z: np.ndarray | None = None, contained: np.ndarray | None = None,
                  sibling: np.ndarray | None = None, words: np.ndarray | None = None,
                  second: np.ndarray | None = None) -> np.ndarray:
    """:func:`classify` for arrays of pairs (``nan`` where a role or ends is missing);
    ``gap`` and ``z`` as in :class:`PairScores` (``nan``: not known), ``contained`` and ``sibling``
    boolean arrays (default False); returns indices into :data:`ORDER`. The index uses it for
    thousands of candidates at once. ``words``: (n, 4) :func:`.compared_parts.means_relation` rows for
    the judge (zeros when not given); ``second``: (n, 2) cosines of the second model (the judge with
    ``similarity.second_model``)."""
    if t.judge:
        return judged_many(means, lexical, role, ends, t, whole, gap, z, contained, sibling, words, second)
    score = (1 - t.lexical_weight) * means + t.lexical_weight * lexical
    with np.errstate(invalid="ignore"):
        same_role = np.isnan(role) | (role >= t.role)
        other_benefit = ~np.isnan(ends) & (ends < t.ends)
    dup = same_role & (score >= t.duplicate)
    if gap is not None:
        with np.errstate(invalid="ignore"):
            dup &= np.isnan(gap) | (gap >= -t.near_best - EPS)
    if z is not None:
        with np.errstate(invalid="ignore"):
            out_z = np.isnan(z) | (z >= t.distinct - EPS)
        dup &= out_z | (contained if contained is not None else False)
    out = np.zeros(len(score), np.int8)
    out[dup & ~other_benefit] = 1
    out[(dup & other_benefit) | (same_role & ~dup & (score >= t.overlap))] = 2
    out[~same_role & (score >= t.same_goal)] = 3
    if whole is not None:
        out[whole < t.whole] = 0
    if sibling is not None:
        out[sibling] = 0
    return out


def judged_many(means, lexical, role, ends, t: Thresholds, whole, gap=None, z=None, contained=None, sibling=None,
                words=None, second=None) -> np.ndarray:
    """:func:`judged` for arrays of pairs (as :func:`classify_many` takes them); indices into :data:`ORDER`."""
    from .pair_judge import feature_matrix, verdicts

    n = len(means)
    nan = np.full(n, np.nan)
    contained = np.zeros(n, bool) if contained is None else np.asarray(contained, bool)
    x = feature_matrix(whole if whole is not None else np.ones(n), means, lexical, role, ends,
                       nan if gap is None else gap, contained, words, second if t.second else None)
    dup, merge = verdicts(x)
    if z is not None:
        with np.errstate(invalid="ignore"):
            out_z = np.isnan(z) | (z >= t.distinct - EPS) | contained
    else:
        out_z = np.ones(n, bool)
    with np.errstate(invalid="ignore"):
        same_role = np.isnan(role) | (role >= t.role)
    out = np.zeros(n, np.int8)
    related = dup | merge
    out[related & same_role] = 2
    out[related & ~same_role] = 3
    out[dup & out_z] = 1
    if whole is not None:
        out[whole < t.whole] = 0
    if sibling is not None:
        out[np.asarray(sibling, bool)] = 0
    return out

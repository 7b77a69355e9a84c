"""Near pairs: each story's nearest neighbours by whole-story cosine, for a second judge to look at.

The language model judge of duplicates (``check --model-checks``, rule ST606) cannot ask about every
pair of a backlog; it asks about the pairs the embedding index puts close together. On the labelled
pairs, 69 of the 72 tune duplicates have a whole cosine of at least 0.6 (docs/similarity.md), so the
gate costs little recall and keeps the questions to a few per story.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from ..story import Story

GATE = 0.60  # the whole cosine a pair needs to be asked about (tune pairs: 69 of 72 duplicates reach it)
PER_STORY = 3  # nearest neighbours kept per story
BLOCK = 2048  # rows of the similarity matrix computed at once (bounds memory on large workspaces)


def near_pairs(index, gate: float = GATE, per_story: int = PER_STORY,
               only: Callable[[Story], bool] | None = None) -> list[tuple[Story, Story, float]]:
    """(earlier story, later story, whole cosine) for each story's ``per_story`` nearest neighbours in the
    SimilarityIndex ``index`` at ``gate`` or above, each pair once, closest first. Stories with the same
    text share a vector and are not paired here (exact duplicates are ST601's). ``only``: the neighbours of
    the stories it accepts alone (a few edited stories against the whole index, not every row)."""
    vectors, members = index.whole_rows()
    n = len(members)
    if n < 2 or per_story < 1:
        return []
    k = min(per_story, n - 1)
    rows_wanted = np.arange(n) if only is None else \
        np.array([i for i, m in enumerate(members) if any(only(s) for s in m)], dtype=np.int64)
    seen: dict[tuple[int, int], float] = {}
    for start in range(0, len(rows_wanted), BLOCK):
        ids = rows_wanted[start:start + BLOCK]
        sims = vectors[ids] @ vectors.T
        rows = np.arange(sims.shape[0])
        sims[rows, ids] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for r, cols in enumerate(top):
            i = int(ids[r])
            for c in cols.tolist():
                cos = float(sims[r, c])
                if cos >= gate:
                    key = (min(i, c), max(i, c))
                    seen[key] = cos
    out = []
    for (i, j), cos in seen.items():
        a, b = sorted((members[i][0], members[j][0]), key=_position)
        out.append((a, b, cos))
    out.sort(key=lambda t: (-t[2], _position(t[0]), _position(t[1])))
    return out


def _position(s: Story) -> tuple[str, int, int]:
    return (s.file, s.range.start.line, s.range.start.character)


def flagged_pairs(findings: Iterable, code: str) -> set[tuple[tuple[str, int], tuple[str, int]]]:
    """The (file, line) pairs, both orders, that findings of ``code`` join (a finding and each of its related stories)."""
    out = set()
    for f in findings:
        if f.code != code:
            continue
        here = (f.file, f.range.start.line)
        for r in f.related:
            there = (r.file, r.range.start.line)
            out |= {(here, there), (there, here)}
    return out

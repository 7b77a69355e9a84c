"""Clusters of near-duplicate stories: connected components of the related-pairs graph,
each represented by its medoid (the member most similar to all the others)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from ..story import Story


@dataclass(frozen=True, slots=True)
class Cluster:
    representative: Story  # the medoid
    stories: tuple[Story, ...]  # representative first, then by file and line
    cohesion: float  # mean whole-story cosine of the members to the representative

    def __len__(self) -> int:
        return len(self.stories)


def _components(edges: Iterable[tuple[int, int]], nodes: Iterable[int]) -> list[list[int]]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for n in nodes:
        find(n)
    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for n in parent:
        groups.setdefault(find(n), []).append(n)
    return [sorted(g) for g in groups.values()]


def connected_clusters(edges: Iterable[tuple[int, int]], extra_nodes: Iterable[int], vectors: np.ndarray,
                       members: Mapping[int, Mapping] | list) -> list[Cluster]:
    """Clusters over slot ``edges``; ``extra_nodes`` are slots that form a cluster on their own
    (several stories with one text). ``members[slot]`` maps keys to the stories of a slot."""
    out = []
    for comp in _components(edges, extra_nodes):
        weights = np.array([len(members[s]) for s in comp], np.float32)
        if weights.sum() < 2:
            continue
        v = vectors[comp]
        sims = v @ v.T
        # Sum of similarities to every member story (a slot stands for all its stories).
        totals = sims @ weights - 1.0  # leave out the medoid itself once
        medoid = int(np.argmax(totals))
        rep_slot = comp[medoid]
        rep = min(members[rep_slot].values(), key=lambda s: (s.file, s.line))
        rest = sorted((s for slot in comp for s in members[slot].values() if s is not rep), key=lambda s: (s.file, s.line))
        cohesion = float((sims[medoid] @ weights - 1.0) / max(weights.sum() - 1, 1))
        out.append(Cluster(rep, (rep, *rest), round(cohesion, 4)))
    out.sort(key=lambda c: (-len(c), c.representative.file, c.representative.line))
    return out

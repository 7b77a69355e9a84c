"""Clusters of near-duplicate stories over the related-pairs graph, each represented by its
medoid (the member most similar to all the others).

Plain connected components chain: A overlaps B, B overlaps C, and soon a dozen
stories of one epic form a "cluster" whose ends have little in common. So each
component is cut into stars: the member with the most (and strongest) links
takes every remaining member it links to directly, and the rest is clustered
again. Every member of a cluster is then directly related to its centre.
"""

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


def _stars(comp: list[int], weights: dict[tuple[int, int], float], order: dict[int, tuple]) -> list[list[int]]:
    """Cut one component into stars around its best-linked members.

    Ties go to the member that comes first in the files (``order``), never to
    internal slot numbers, so an index updated story by story clusters exactly
    like one built from scratch.
    """
    left = set(comp)
    adj: dict[int, dict[int, float]] = {n: {} for n in comp}
    for (a, b), w in weights.items():
        if a in adj and b in adj:
            adj[a][b] = adj[b][a] = w
    out = []
    while left:
        centre = min(left, key=lambda n: (-round(sum(w for m, w in adj[n].items() if m in left), 5), order[n]))
        star = [centre, *sorted((m for m in adj[centre] if m in left), key=order.__getitem__)]
        left -= set(star)
        out.append(star)
    return out


def connected_clusters(edges: Iterable[tuple[int, int, float]], extra_nodes: Iterable[int], vectors: np.ndarray,
                       members: Mapping[int, Mapping] | list) -> list[Cluster]:
    """Clusters over weighted slot ``edges`` (a, b, similarity); ``extra_nodes`` are slots that
    form a cluster on their own (several stories with one text). ``members[slot]`` maps keys
    to the stories of a slot."""
    edges = list(edges)
    weights = {(a, b): w for a, b, w in edges}
    out = []
    for comp in _components([(a, b) for a, b, _ in edges], extra_nodes):
        order = {n: min((s.file, s.line, s.id) for s in members[n].values()) for n in comp}
        comp = sorted(comp, key=order.__getitem__)
        for group in _stars(comp, weights, order) if len(comp) > 2 else [comp]:
            cluster = _cluster(group, vectors, members)
            if cluster is not None:
                out.append(cluster)
    out.sort(key=lambda c: (-len(c), c.representative.file, c.representative.line))
    return out


def _cluster(comp: list[int], vectors: np.ndarray, members) -> Cluster | None:
    weights = np.array([len(members[s]) for s in comp], np.float32)
    if weights.sum() < 2:
        return None
    v = vectors[comp]
    sims = v @ v.T
    # Sum of similarities to every member story (a slot stands for all its stories).
    totals = np.round(sims @ weights - 1.0, 5)
    medoid = int(np.argmax(totals))  # first of equals: the group is in file order
    rep_slot = comp[medoid]
    rep = min(members[rep_slot].values(), key=lambda s: (s.file, s.line))
    rest = sorted((s for slot in comp for s in members[slot].values() if s is not rep), key=lambda s: (s.file, s.line))
    cohesion = float((sims[medoid] @ weights - 1.0) / max(weights.sum() - 1, 1))
    return Cluster(rep, (rep, *rest), round(cohesion, 4))

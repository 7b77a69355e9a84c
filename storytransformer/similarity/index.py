"""The workspace-wide similarity index: exact top-k search by blocked matrix products.

Stories with the same normalised text share one *slot* (one row in each
matrix): exact duplicates cost nothing extra, and a story repeated a thousand
times cannot crowd real neighbours out of a top-k list. Each slot has four
unit vectors (whole story, role, means, ends) and the content lemmas of its
means and role. Removing a story frees its slot for reuse; adding one embeds
only texts the cache has not seen, so re-querying after an edit costs one
small encode and one matrix-vector product.

The index also keeps the sum and the Gram matrix (sum of outer products) of the
active whole-story vectors, in float64, updated as slots come and go: from them
each story's mean and standard deviation of cosines to every other story are
exact at the cost of one small product, which gives a pair's z-score (how far it
stands out from each story's own neighbours) without an all-pairs pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from ..formats.base import normalise
from ..story import Story
from .classify import ORDER, PairScores, Relation, Thresholds, classify, classify_many
from .clusters import Cluster, connected_clusters
from .embedder import Embedder
from .compared_parts import (StoryTexts, content_lemmas, jaccard, means_relation, one_word_sibling, other_operation,
                             role_lemmas, role_overlap, swapped_phrase)

Key = tuple[str, str]  # (file, story id)
EPS_WHOLE = 1e-6  # the candidate floor's own tolerance
BLOCK = 512  # rows per matrix product: 512 x 20,000 float32 scores = 40 MB at most
# Below this many distinct stories a story's spread of cosines says little (the largest z-score
# possible among m values is sqrt(m - 1)): the stand-out test is skipped, as in a two-story example.
MIN_STORIES_FOR_Z = 30


@dataclass(frozen=True, slots=True)
class Neighbour:
    story: Story
    score: float  # the pair's similarity (PairScores.similarity): cosine of the whole stories
    relation: Relation
    scores: PairScores | None = None


@dataclass(frozen=True, slots=True)
class Pair:
    """Two slots (two distinct normalised texts) and how they relate."""

    a: int
    b: int
    scores: PairScores
    relation: Relation
    similarity: float  # the one figure shown for the pair (PairScores.similarity)


class SimilarityIndex:
    """Every story of a workspace, searchable by meaning; updated one story at a time."""

    def __init__(self, embedder: Embedder, thresholds: Thresholds | None = None, max_neighbours: int = 20,
                 second: Embedder | None = None):
        self.embedder = embedder
        self.thresholds = thresholds or Thresholds()
        # the second model of the judge (similarity.second_model): asked only about pairs near a cut
        self.second = second
        if second is not None and not self.thresholds.second:
            from dataclasses import replace

            self.thresholds = replace(self.thresholds, judge=True, second=True)
        self.max_neighbours = max(1, max_neighbours)
        d = embedder.dim
        self._cap = 0
        self._whole = np.zeros((0, d), np.float32)
        self._means = np.zeros((0, d), np.float32)
        self._role = np.zeros((0, d), np.float32)
        self._ends = np.zeros((0, d), np.float32)
        self._has_role = np.zeros(0, bool)
        self._has_ends = np.zeros(0, bool)
        self._active = np.zeros(0, bool)
        self._means_lemmas: list[frozenset[str]] = []
        self._role_lemmas: list[frozenset[str]] = []
        self._slot_text: list[str | None] = []
        self._members: list[dict[Key, Story]] = []
        self._slot_of: dict[str, int] = {}  # normalised text -> slot
        self._key_slot: dict[Key, int] = {}
        self._free: list[int] = []
        self._pairs: list[Pair] | None = None  # all related pairs, computed on demand
        # the related candidates (their rows in _cand and relation codes), kept as arrays: Pair objects
        # are built only when pairs() is asked for, not on every refresh
        self._related: tuple[np.ndarray, np.ndarray, tuple] | None = None
        self._cand: tuple[np.ndarray, ...] | None = None  # candidate slot pairs and their own scores
        self._nearest = np.zeros(0)  # per slot: whole cosine of its nearest other slot
        self._nearest_arg = np.zeros(0, np.int64)  # per slot: that nearest slot
        self._dirty: set[int] = set()  # slots added or freed since the pairs were computed
        self._sum = np.zeros(d, np.float64)  # sum of the active whole vectors
        self._gram = np.zeros((d, d), np.float64)  # sum of their outer products

    # -- building -----------------------------------------------------------
    @classmethod
    def build(cls, stories: Iterable[Story], config=None, embedder: Embedder | None = None,
              progress: Callable[[int, int], None] | None = None) -> "SimilarityIndex":
        """An index of ``stories`` with the model, thresholds and cache of ``config`` (a SimilarityConfig)."""
        from .embedder import shared_embedder

        if embedder is None:
            embedder = shared_embedder(getattr(config, "model", ""), getattr(config, "device", "cpu"),
                                       getattr(config, "cache", True), getattr(config, "batch_size", 64),
                                       getattr(config, "quantize", "none"))
        from .second_judge import second_embedder

        thresholds = Thresholds.of(config) if config is not None else None
        second = second_embedder(config) if config is not None else None
        index = cls(embedder, thresholds, getattr(config, "max_neighbours", 20), second=second)
        index.update(stories, progress=progress)
        return index

    def __len__(self) -> int:
        return len(self._key_slot)

    def __contains__(self, key: Key) -> bool:
        return key in self._key_slot

    def stories(self) -> Iterator[Story]:
        for members in self._members:
            yield from members.values()

    def story(self, key: Key) -> Story | None:
        slot = self._key_slot.get(key)
        return None if slot is None else self._members[slot].get(key)

    def slot_of(self, key: Key) -> int | None:
        """The slot (distinct normalised text) of an indexed story; the slots of :meth:`pairs`."""
        return self._key_slot.get(key)

    def members(self, slot: int) -> list[Story]:
        """The stories having the text of ``slot``, in the order :meth:`related` yields them."""
        return list(self._members[slot].values())

    def _grow(self, need: int) -> None:
        if need <= self._cap:
            return
        cap = max(need, int(self._cap * 1.5) + 64)
        for name in ("_whole", "_means", "_role", "_ends"):
            old = getattr(self, name)
            new = np.zeros((cap, self.embedder.dim), np.float32)
            new[: len(old)] = old
            setattr(self, name, new)
        for name in ("_has_role", "_has_ends", "_active"):
            old = getattr(self, name)
            new = np.zeros(cap, bool)
            new[: len(old)] = old
            setattr(self, name, new)
        grow = cap - len(self._slot_text)
        self._means_lemmas += [frozenset()] * grow
        self._role_lemmas += [frozenset()] * grow
        self._slot_text += [None] * grow
        self._members += [{} for _ in range(grow)]
        self._free.extend(range(cap - 1, self._cap - 1, -1))
        self._cap = cap

    def update(self, stories: Iterable[Story], progress: Callable[[int, int], None] | None = None) -> None:
        """Add stories, or replace those already present under the same (file, id)."""
        new_slots: dict[str, int] = {}
        for story in stories:
            key = (story.file, story.id)
            old = self._key_slot.get(key)
            if old is not None and self._members[old][key].text == story.text:
                self._members[old][key] = story  # unchanged text, maybe another range
                continue
            text = normalise(story.text)
            if old is not None and self._slot_text[old] == text:
                self._members[old][key] = story  # same text, maybe another range
                continue
            if old is not None:
                self._drop(key)
            slot = self._slot_of.get(text)
            if slot is None:
                if not self._free:
                    self._grow(self._cap + 1)
                slot = self._free.pop()
                self._slot_of[text] = slot
                self._slot_text[slot] = text
                self._active[slot] = True
                new_slots[text] = slot
            self._members[slot][key] = story
            self._key_slot[key] = slot
        # A key given twice with different texts (an explicit id repeated in one file) may have emptied,
        # or even reused, a slot added earlier in this batch: embed only the slots that still hold their text.
        new = [slot for text, slot in new_slots.items() if self._slot_of.get(text) == slot and self._members[slot]]
        if new:
            self._embed([(slot, next(iter(self._members[slot].values()))) for slot in new], progress)
            self._dirty.update(new)

    def sync(self, stories: Iterable[Story], progress: Callable[[int, int], None] | None = None) -> None:
        """Make the index hold exactly ``stories``: update them and remove every other story."""
        stories = list(stories)
        keep = {(s.file, s.id) for s in stories}
        self.remove([k for k in self._key_slot if k not in keep])
        self.update(stories, progress=progress)

    def remove(self, keys: Iterable[Key]) -> None:
        """Forget stories by (file, id); unknown keys are ignored."""
        for key in list(keys):
            if key in self._key_slot:
                self._drop(key)

    def remove_file(self, path: str) -> None:
        self.remove([k for k in self._key_slot if k[0] == path])

    def _drop(self, key: Key) -> None:
        slot = self._key_slot.pop(key)
        members = self._members[slot]
        members.pop(key, None)
        if not members:
            v = self._whole[slot].astype(np.float64)
            self._sum -= v
            self._gram -= np.outer(v, v)
            del self._slot_of[self._slot_text[slot]]
            self._slot_text[slot] = None
            self._active[slot] = False
            for m in (self._whole, self._means, self._role, self._ends):
                m[slot] = 0
            self._has_role[slot] = self._has_ends[slot] = False
            self._free.append(slot)
            self._dirty.add(slot)

    def _embed(self, todo: list[tuple[int, Story]], progress) -> None:
        texts = [StoryTexts.of(s) for _, s in todo]
        # One encode call for every part of every new story; the embedder de-duplicates.
        flat = [t.whole for t in texts] + [t.means_or_whole for t in texts] + \
               [t.role or "" for t in texts] + [t.ends or "" for t in texts]
        vectors = self.embedder.encode(flat, progress=progress)
        n = len(texts)
        slots = np.array([slot for slot, _ in todo], np.int64)
        self._whole[slots] = vectors[:n]
        new = vectors[:n].astype(np.float64)
        self._sum += new.sum(axis=0)
        self._gram += new.T @ new
        self._means[slots] = vectors[n:2 * n]
        self._role[slots] = vectors[2 * n:3 * n]
        self._ends[slots] = vectors[3 * n:]
        for (slot, _), t in zip(todo, texts):
            self._has_role[slot] = t.role is not None
            self._has_ends[slot] = t.ends is not None
            self._means_lemmas[slot] = content_lemmas(t.means_or_whole)
            self._role_lemmas[slot] = role_lemmas(t.role or "")
        if self.embedder.cache.pending >= 256:
            self.embedder.save()

    def save_cache(self) -> bool:
        """Write new embeddings to the on-disk cache (the daemon calls this when idle)."""
        saved = self.embedder.save()
        if self.second is not None:
            saved = self.second.save() and saved
        return saved

    def _second_cosines(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(n, 2) cosines of the second model for slot pairs (``nan`` when there is no second model)."""
        if self.second is None:
            return np.full((len(a), 2), np.nan)
        from .second_judge import pair_cosines

        texts = {}
        for slot in set(np.asarray(a).tolist()) | set(np.asarray(b).tolist()):
            texts[slot] = StoryTexts.of(next(iter(self._members[slot].values())))
        out = pair_cosines(self.second, [texts[x] for x in np.asarray(a).tolist()],
                           [texts[y] for y in np.asarray(b).tolist()])
        if self.second.cache.pending:
            # Saved at once: the second model runs only after the callers' own save (pairs and queries come
            # after the build), and a text it embedded costs far more than rewriting its cache file.
            self.second.save()
        return out

    # -- scoring ------------------------------------------------------------
    def _score_arrays(self, a: np.ndarray, b: np.ndarray, whole: np.ndarray | None = None,
                      lexical: np.ndarray | None = None, nearest: np.ndarray | None = None,
                      with_z: bool = True) -> tuple[np.ndarray, ...]:
        """(whole, means, means_lexical, role, ends, gap, z) for slot pairs; ``nan`` where a part is missing.
        ``nearest`` holds each slot's nearest-neighbour cosine (computed here when not given)."""
        if whole is None:
            whole = np.einsum("ij,ij->i", self._whole[a], self._whole[b])
        means = np.einsum("ij,ij->i", self._means[a], self._means[b]).astype(np.float64)
        if lexical is None:
            lexical = self._lexical(a, b)
        role = np.einsum("ij,ij->i", self._role[a], self._role[b]).astype(np.float64)
        both_roles = self._has_role[a] & self._has_role[b]
        memo: dict[tuple[frozenset, frozenset], float] = {}  # roles repeat: few distinct pairs
        for i in np.flatnonzero(both_roles).tolist():
            ra, rb = self._role_lemmas[a[i]], self._role_lemmas[b[i]]
            j = memo.get((ra, rb))
            if j is None:
                j = memo[(ra, rb)] = role_overlap(ra, rb)
            role[i] = max(role[i], j)
        role[~both_roles] = np.nan
        ends = np.einsum("ij,ij->i", self._ends[a], self._ends[b]).astype(np.float64)
        ends[~(self._has_ends[a] & self._has_ends[b])] = np.nan
        whole = np.asarray(whole, np.float64)
        if nearest is None:
            # Only pairs close enough to be related need the gap (below ``whole`` every pair is unrelated).
            close = whole >= self.thresholds.whole - 1e-6
            slots = np.unique(np.concatenate([a[close], b[close]])) if close.any() else np.zeros(0, np.int64)
            best = np.full(self._cap, np.nan)
            best[slots] = self._nearest_of(slots)
        else:
            best = nearest
        with np.errstate(invalid="ignore"):
            gap = whole - np.maximum(best[a], best[b]) if len(a) else np.zeros(0)
        z = self._z(a, b, whole) if with_z else np.full(len(a), np.nan)
        return whole, means, np.asarray(lexical, np.float64), role, ends, gap, z

    def _spread(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation) of each slot's cosines to every other active slot, from the kept
        sum and Gram matrix; ``nan`` when the workspace has too few stories to tell."""
        slots = np.asarray(slots, np.int64)
        n = int(self._active.sum())
        if n < MIN_STORIES_FOR_Z or not len(slots):
            nan = np.full(len(slots), np.nan)
            return nan, nan.copy()
        w = self._whole[slots].astype(np.float64)
        own = np.einsum("ij,ij->i", w, w)  # 1 for a unit vector: the slot's cosine with itself
        mean = (w @ self._sum - own) / (n - 1)
        square = (np.einsum("ij,ij->i", w @ self._gram, w) - own * own) / (n - 1)
        std = np.sqrt(np.maximum(square - mean * mean, 1e-12))
        return mean, std

    def _z(self, a: np.ndarray, b: np.ndarray, whole: np.ndarray) -> np.ndarray:
        """The smaller of the two stories' z-scores of each pair's whole cosine (``nan``: not known)."""
        if not len(a):
            return np.zeros(0)
        slots, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        mean, std = self._spread(slots)
        ia, ib = inverse[: len(a)], inverse[len(a):]
        whole = np.asarray(whole, np.float64)
        return np.minimum((whole - mean[ia]) / std[ia], (whole - mean[ib]) / std[ib])

    def _text_checks(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(contained, sibling, words) for slot pairs: whether one means' content lemmas are all in the
        other's, whether the means are siblings (a swapped word or phrase, another operation), and the
        judge's word-level features (:func:`.compared_parts.means_relation`, an (n, 4) array). Plain
        Python per pair: callers pass only the pairs these can change."""
        contained = np.zeros(len(a), bool)
        sibling = np.zeros(len(a), bool)
        words = np.zeros((len(a), 4), np.float64)
        lemmas = self._means_lemmas
        judge = self.thresholds.judge
        for i, (x, y) in enumerate(zip(np.asarray(a).tolist(), np.asarray(b).tolist())):
            la, lb = lemmas[x], lemmas[y]
            ta, tb = self._means_text(x), self._means_text(y)
            contained[i] = bool(la) and bool(lb) and (la <= lb or lb <= la)
            one_word = len(la - lb) == 1 and len(lb - la) == 1 and one_word_sibling(ta, tb)
            sibling[i] = one_word or other_operation(ta, tb) or swapped_phrase(ta, tb)
            if judge:
                words[i] = means_relation(ta, tb)
        return contained, sibling, words

    def _means_text(self, slot: int) -> str:
        return StoryTexts.of(next(iter(self._members[slot].values()))).means_or_whole

    @staticmethod
    def _pair_scores(arrays: tuple[np.ndarray, ...], i: int, contained: bool = False, sibling: bool = False,
                     words: np.ndarray | None = None, second: np.ndarray | None = None) -> PairScores:
        whole, means, lexical, role, ends, gap, z = (float(x[i]) for x in arrays)
        return PairScores(whole=whole, means=means, means_lexical=lexical,
                          role=None if role != role else role, ends=None if ends != ends else ends,
                          gap=None if gap != gap or gap == -np.inf else min(gap, 0.0),
                          z=None if z != z or abs(z) == np.inf else z, contained=contained, sibling=sibling,
                          words=None if words is None else tuple(float(v) for v in words),
                          second=None if second is None or np.isnan(second).any() else
                          (float(second[0]), float(second[1])))

    def _scores(self, a: np.ndarray, b: np.ndarray) -> list[PairScores]:
        arrays = self._score_arrays(a, b)
        contained, sibling, words = self._text_checks(a, b)
        second = self._second_cosines(a, b)
        return [self._pair_scores(arrays, i, bool(contained[i]), bool(sibling[i]), words[i], second[i])
                for i in range(len(a))]

    def pair_scores(self, a: Key, b: Key) -> PairScores:
        """The scores of two indexed stories (by (file, id))."""
        x, y = self._key_slot[a], self._key_slot[b]
        return self._scores(np.array([x]), np.array([y]))[0]

    def ends_cosine(self, a: Story, b: Story) -> float | None:
        """The cosine of two indexed stories' benefits (None when either has none or is not indexed):
        what a duplicate merge asks before it sets one benefit aside (:mod:`.benefits`)."""
        x, y = self._key_slot.get((a.file, a.id)), self._key_slot.get((b.file, b.id))
        if x is None or y is None or not (self._has_ends[x] and self._has_ends[y]):
            return None
        return float(self._ends[x] @ self._ends[y])

    def means_cosine(self, a: Story, b: Story) -> float | None:
        """The cosine of two indexed stories' means (None when either has none or is not indexed): how close
        two duplicates' wants are, which the benefit judge weighs (as the CLI's judge, :mod:`.benefits`)."""
        x, y = self._key_slot.get((a.file, a.id)), self._key_slot.get((b.file, b.id))
        if x is None or y is None or a.means is None or b.means is None:
            return None
        return float(self._means[x] @ self._means[y])

    def _nearest_of(self, slots: np.ndarray) -> np.ndarray:
        """The whole-story cosine of each slot's nearest other active slot (``-inf`` when alone);
        one matrix-vector product per slot, exact whatever changed before."""
        slots = np.asarray(slots, np.int64)
        if not len(slots):
            return np.zeros(0)
        s = self._whole[slots] @ self._whole.T  # every slot, no copy of the matrix; inactive ones masked
        s[:, ~self._active] = -np.inf
        s[np.arange(len(slots)), slots] = -np.inf
        return s.max(axis=1).astype(np.float64)

    def _candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Slot pairs (a < b) whose whole cosine reaches the ``whole`` threshold, at most
        ``max_neighbours`` per slot, from blocked products over the upper triangle; also sets
        every slot's nearest-neighbour cosine (row and column maxima of the same blocks)."""
        active = np.flatnonzero(self._active)
        self._nearest = np.full(self._cap, -np.inf)
        self._nearest_arg = np.full(self._cap, -1, np.int64)
        if len(active) < 2:
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0, np.float32)
        whole = self._whole[active]
        floor = self.thresholds.whole - 1e-6
        k = self.max_neighbours
        best = np.full(len(active), -np.inf, np.float32)
        arg = np.full(len(active), -1, np.int64)
        rows_a, rows_b, sims = [], [], []
        for start in range(0, len(active), BLOCK):
            stop = min(start + BLOCK, len(active))
            s = whole[start:stop] @ whole[start:].T  # only columns >= start: each pair once
            s[np.arange(stop - start), np.arange(stop - start)] = -np.inf  # self
            s[np.tril_indices(stop - start, -1)] = -np.inf  # pairs already in the block above the diagonal
            n = stop - start
            rarg = s.argmax(axis=1)
            rmax = s[np.arange(n), rarg]
            better = rmax > best[start:stop]
            best[start:stop][better], arg[start:stop][better] = rmax[better], rarg[better] + start
            carg = s.argmax(axis=0)
            cmax = s[carg, np.arange(s.shape[1])]
            better = cmax > best[start:]
            best[start:][better], arg[start:][better] = cmax[better], carg[better] + start
            r, c, vals = _best_per_row(s, floor, k)
            rows_a.append(active[start + r])
            rows_b.append(active[start + c])
            sims.append(vals)
        self._nearest[active] = best
        self._nearest_arg[active] = np.where(arg >= 0, active[np.maximum(arg, 0)], -1)
        a, b, v = np.concatenate(rows_a), np.concatenate(rows_b), np.concatenate(sims)
        return a, b, v.astype(np.float32)

    def _candidates_of(self, slots: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate pairs of ``slots`` (changed ones) against every active slot, each pair once;
        brings every slot's nearest-neighbour cosine up to date on the way."""
        rows = np.array(sorted(slots), np.int64)
        s = self._whole[rows] @ self._whole.T  # columns: every slot (no copy of the matrix)
        s[:, ~self._active] = -np.inf
        s[np.arange(len(rows)), rows] = -np.inf  # self
        self._refresh_nearest(rows, s)
        for i in range(1, len(rows)):
            s[i, rows[:i]] = -np.inf  # pairs of two changed slots: from the first only
        r, c, vals = _best_per_row(s, self.thresholds.whole - 1e-6, self.max_neighbours)
        return rows[r], c.astype(np.int64), vals.astype(np.float32)

    def _refresh_nearest(self, rows: np.ndarray, s: np.ndarray) -> None:
        """Nearest neighbours after an edit: the changed ``rows`` from their products ``s`` with
        every slot (inactive ones ``-inf``); slots whose nearest was changed or removed are searched again; the rest
        only compare with the changed rows."""
        nearest, arg = self._nearest, self._nearest_arg
        if len(nearest) < self._cap:  # the index grew
            nearest = np.concatenate([nearest, np.full(self._cap - len(nearest), -np.inf)])
            arg = np.concatenate([arg, np.full(self._cap - len(arg), -1, np.int64)])
        dirty = np.zeros(self._cap, bool)
        dirty[list(self._dirty)] = True
        nearest[~self._active] = -np.inf
        arg[~self._active] = -1
        stale = np.flatnonzero(self._active & ~dirty & (arg >= 0) & dirty[np.maximum(arg, 0)])
        if len(stale):
            ss = self._whole[stale] @ self._whole.T
            ss[:, ~self._active] = -np.inf
            ss[np.arange(len(stale)), stale] = -np.inf
            top = ss.argmax(axis=1)
            nearest[stale], arg[stale] = ss[np.arange(len(stale)), top], top
        if len(rows):
            top = s.argmax(axis=1)
            nearest[rows], arg[rows] = s[np.arange(len(rows)), top], top
            best_row = s.argmax(axis=0)
            cmax = s[best_row, np.arange(s.shape[1])]
            better = self._active & (cmax > nearest)
            nearest[better], arg[better] = cmax[better], rows[best_row[better]]
        self._nearest, self._nearest_arg = nearest, arg

    def _lexical(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Jaccard overlap of the means lemmas for many slot pairs at once (sparse row products)."""
        if len(a) < 2000:
            lemmas = self._means_lemmas
            return np.array([jaccard(lemmas[x], lemmas[y]) for x, y in zip(a.tolist(), b.tolist())], np.float64)
        from scipy import sparse

        vocab: dict[str, int] = {}
        rows, cols = [], []
        for slot, lemmas in enumerate(self._means_lemmas):
            for w in lemmas:
                rows.append(slot)
                cols.append(vocab.setdefault(w, len(vocab)))
        m = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(self._cap, max(len(vocab), 1)))
        sizes = np.asarray(m.sum(axis=1), np.float64).ravel()
        inter = np.asarray(m[a].multiply(m[b]).sum(axis=1), np.float64).ravel()
        union = sizes[a] + sizes[b] - inter
        return np.where(union > 0, inter / np.maximum(union, 1), 0.0)

    def pairs(self) -> list[Pair]:
        """Every pair of distinct texts that is not unrelated (cached until the next change).

        Candidates (whole cosine at the ``whole`` threshold) come from the blocked products and
        are scored in full once; their relations are decided afresh from the current nearest
        neighbours, since an edit elsewhere can make another story nearer. After a few changes
        only the changed slots are searched again.
        """
        self._bring_up_to_date()
        if self._pairs is None:
            rows, codes, (arrays, contained, sibling, words, second) = self._related
            a, b = self._cand[0], self._cand[1]
            out = []
            for i, code in zip(rows.tolist(), codes.tolist()):
                sc = self._pair_scores(arrays, i, bool(contained[i]), bool(sibling[i]), words[i], second[i])
                out.append(Pair(int(a[i]), int(b[i]), sc, ORDER[code], sc.similarity))
            self._pairs = out
        return self._pairs

    def related_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, relation, similarity) of every related pair as arrays, in :meth:`pairs` order:
        slots, indices into :data:`ORDER`, and the one figure shown (the whole cosine, float64).
        The same pairs as :meth:`pairs` without building a Python object per pair, for a caller that
        compares them between edits (the incremental findings)."""
        self._bring_up_to_date()
        rows, codes, (arrays, _, _, _, _) = self._related
        return self._cand[0][rows], self._cand[1][rows], codes.astype(np.int8), np.asarray(arrays[0], np.float64)[rows]

    def _bring_up_to_date(self) -> None:
        """Update the candidates from the changed slots and decide every candidate's relation afresh."""
        if self._related is not None and not self._dirty:
            return
        changed = [x for x in self._dirty if self._active[x]]
        if self._cand is not None and len(self._dirty) <= max(64, int(self._active.sum()) // 50):
            # A few stories changed: keep the other candidates, search again from the changed ones only.
            # (Rows with more than max_neighbours candidates may then differ slightly from a rebuild.)
            dirty = np.array(sorted(self._dirty), np.int64)
            a, b = self._cand[0], self._cand[1]
            keep = ~(np.isin(a, dirty) | np.isin(b, dirty))
            kept = tuple(x[keep] for x in self._cand)
            if changed:
                new = self._candidate_arrays(*self._candidates_of(changed))
            else:
                self._refresh_nearest(np.zeros(0, np.int64), np.zeros((0, self._cap)))
                new = self._candidate_arrays(*(np.zeros(0, np.int64),) * 2, np.zeros(0, np.float32))
            self._cand = tuple(np.concatenate([x, y]) for x, y in zip(kept, new))
        else:
            self._cand = self._candidate_arrays(*self._candidates())
        self._dirty.clear()
        self._related = self._classify()
        self._pairs = None

    def _candidate_arrays(self, a: np.ndarray, b: np.ndarray, whole: np.ndarray) -> tuple[np.ndarray, ...]:
        """(a, b, whole, means, lexical, role, ends, checked, contained, sibling, words, second) of candidate
        slot pairs: the scores that do not depend on the rest of the index, and the word-level checks and the
        second model's cosines (``nan`` until asked), filled in by :meth:`_classify` the first time a pair may be
        related (kept with the pair until a slot changes)."""
        arrays = self._score_arrays(a, b, whole, nearest=np.zeros(self._cap), with_z=False)
        unknown = np.zeros(len(a), bool)
        return (a.astype(np.int64), b.astype(np.int64), *arrays[:5], unknown, unknown.copy(), unknown.copy(),
                np.zeros((len(a), 4), np.float64), np.full((len(a), 2), np.nan))

    def _classify(self) -> tuple[np.ndarray, np.ndarray, tuple]:
        """(rows, codes, (scores, contained, sibling)) of the related pairs among the candidates, with gaps from the current nearest neighbours and
        z-scores from the current spread of each story's cosines; the word-level checks run only on
        the pairs they can change (related ones, and duplicates but for the z-score)."""
        t = self.thresholds
        a, b, whole, means, lexical, role, ends, checked, contained, sibling, words, second = self._cand
        gap = whole - np.maximum(self._nearest[a], self._nearest[b])
        use_second = t.second and self.second is not None
        if t.judge:
            # The word-level features only where the judge's optimistic bound reaches a cut.
            from .pair_judge import feature_matrix, logit_cuts, optimistic_logits

            cuts = logit_cuts(use_second)
            bound = optimistic_logits(feature_matrix(whole, means, lexical, role, ends, gap), second=use_second)
            may = (whole >= t.whole - EPS_WHOLE) & ((bound[:, 0] >= cuts[0]) | (bound[:, 1] >= cuts[1]))
            todo = np.flatnonzero(may & ~checked)
            if len(todo):
                contained[todo], sibling[todo], words[todo] = self._text_checks(a[todo], b[todo])
                checked[todo] = True
            if use_second:
                # The second model only where, with the real word-level features, a cut can still be reached
                # (its two cosines at their best): the pairs near a cut, each embedded once and cached.
                tight = optimistic_logits(feature_matrix(whole, means, lexical, role, ends, gap, contained, words),
                                          second=True, words_known=True)
                may &= ~sibling & ((tight[:, 0] >= cuts[0]) | (tight[:, 1] >= cuts[1]))
                ask = np.flatnonzero(may & np.isnan(second[:, 0]))
                if len(ask):
                    second[ask] = self._second_cosines(a[ask], b[ask])
            codes = classify_many(means, lexical, role, ends, t, whole=whole, gap=gap, contained=contained,
                                  sibling=sibling, words=words, second=second if use_second else None)
            codes[~may] = 0
        else:
            codes = classify_many(means, lexical, role, ends, t, whole=whole, gap=gap)
        z = np.full(len(a), np.nan)
        maybe = np.flatnonzero(codes == 1)  # only a duplicate depends on the z-score: the few of them
        z[maybe] = self._z(a[maybe], b[maybe], whole[maybe])
        arrays = (whole, means, lexical, role, ends, gap, z)
        if not t.judge:
            todo = np.flatnonzero((codes != 0) & ~checked)
            if len(todo):
                contained[todo], sibling[todo], words[todo] = self._text_checks(a[todo], b[todo])
                checked[todo] = True
        codes = classify_many(means, lexical, role, ends, t, whole=whole, gap=gap, z=z, contained=contained,
                              sibling=sibling, words=words, second=second if use_second else None)
        if t.judge:
            codes[~may] = 0
        rows = np.flatnonzero(codes)
        return rows, codes[rows], (arrays, contained.copy(), sibling.copy(), words.copy(), second.copy())

    def related(self) -> Iterator[tuple[Story, Story, Pair]]:
        """Every related pair of stories (members of slots), excluding exact duplicates."""
        for p in self.pairs():
            for s in self._members[p.a].values():
                for o in self._members[p.b].values():
                    yield s, o, p

    # -- queries ------------------------------------------------------------
    def _query_slot(self, story: Story) -> tuple[int, bool]:
        """The slot of ``story``, adding it temporarily when it is not indexed."""
        key = (story.file, story.id)
        slot = self._key_slot.get(key)
        if slot is not None and self._slot_text[slot] == normalise(story.text):
            return slot, False
        slot = self._slot_of.get(normalise(story.text))
        if slot is not None:
            return slot, False
        self.update([story])
        return self._key_slot[key], True

    def neighbours(self, query: str | Story, k: int = 5) -> list[Neighbour]:
        """The ``k`` stories most similar to ``query`` (a story or free text), best first,
        ranked by the cosine of the whole stories; stories with the query's own text are left out."""
        story = query if isinstance(query, Story) else parse_query(query)
        pairs, dirty = self._pairs, set(self._dirty)  # a temporary query slot changes no pair
        spread = (self._sum.copy(), self._gram.copy())  # restored exactly after a temporary slot
        # The kept nearest neighbours are exact when nothing changed since pairs(): reuse them.
        known = self._nearest.copy() if self._cand is not None and not self._dirty else None
        slot, temporary = self._query_slot(story)
        try:
            sims = self._whole @ self._whole[slot]  # one matrix-vector product over every slot
            sims[~self._active] = -np.inf
            sims[slot] = -np.inf  # the query's own text
            available = int(self._active.sum()) - 1
            if available <= 0 or k <= 0:
                return []
            kk = min(k, available)
            top = np.argpartition(-sims, kk - 1)[:kk]
            slots = top[np.lexsort((top, -sims[top]))]
            nearest = None
            if known is not None and len(known) == self._cap:
                nearest = np.maximum(known, sims) if temporary else known  # the query may be someone's nearest
                nearest[slot] = sims.max()
            query = np.full(len(slots), slot)
            arrays = self._score_arrays(query, slots, nearest=nearest)
            contained, sibling, words = self._text_checks(query, slots)
            second = np.full((len(slots), 2), np.nan)
            close = np.flatnonzero(arrays[0] >= self.thresholds.whole - EPS_WHOLE)  # below: unrelated anyway
            if self.second is not None and len(close):
                second[close] = self._second_cosines(query[close], slots[close])
            scores = [self._pair_scores(arrays, i, bool(contained[i]), bool(sibling[i]), words[i], second[i])
                      for i in range(len(slots))]
            out: list[Neighbour] = []
            for other, sc in zip(slots.tolist(), scores):
                rel = classify(sc, self.thresholds)
                for s in self._members[other].values():
                    out.append(Neighbour(s, sc.similarity, rel, sc))
            return out[:k]
        finally:
            if temporary:
                self.remove([(story.file, story.id)])
                self._pairs, self._dirty = pairs, dirty
                self._sum, self._gram = spread

    def whole_rows(self) -> tuple[np.ndarray, list[list[Story]]]:
        """A copy of the whole-story vector of every distinct text, with the stories having it: for a
        caller that scores its own query vector on another thread (the typing lookup)."""
        active = np.flatnonzero(self._active)
        return self._whole[active].copy(), [list(self._members[s].values()) for s in active.tolist()]

    def part_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the means and role vectors of every distinct text and whether it has a role, in
        :meth:`whole_rows` order: the typing lookup compares a half-typed line part by part (its half
        means against each story's means, its role against each role), which whole vectors cannot."""
        active = np.flatnonzero(self._active)
        return self._means[active].copy(), self._role[active].copy(), self._has_role[active].copy()

    def search(self, text: str | Story, k: int = 5) -> list[Neighbour]:
        """Alias of :meth:`neighbours` (the daemon's name for it)."""
        return self.neighbours(text, k)

    def clusters(self, relations: Sequence[Relation] = (Relation.DUPLICATE, Relation.OVERLAP)) -> list[Cluster]:
        """Groups of near-duplicate stories (stars over ``relations`` pairs, plus exact
        duplicates), each with its medoid as the representative; largest first."""
        wanted = set(relations)
        edges = [(p.a, p.b, p.similarity) for p in self.pairs() if p.relation in wanted]
        slots = [s for s in np.flatnonzero(self._active).tolist() if len(self._members[s]) > 1]
        return connected_clusters(edges, slots, self._whole, self._members)


def _best_per_row(s: np.ndarray, floor: float, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, values) of the entries of ``s`` at or above ``floor``, at most ``k`` per row
    (the best, ties by column)."""
    r, c = np.nonzero(s >= floor)
    vals = s[r, c]
    counts = np.bincount(r, minlength=s.shape[0])
    crowded = np.flatnonzero(counts > k)
    if len(crowded):
        keep = np.ones(len(r), bool)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        for row in crowded.tolist():
            lo, hi = offsets[row], offsets[row + 1]
            order = np.lexsort((c[lo:hi], -vals[lo:hi]))
            keep[lo + order[k:]] = False
        r, c, vals = r[keep], c[keep], vals[keep]
    return r, c, vals


def parse_query(text: str) -> Story:
    """A free-text query as a Story, parsed by the plain-text reader (one line)."""
    from ..formats import read_source

    line = " ".join(text.split()) or " "
    source = read_source("<query>.txt", line, None, "text")
    if source.stories:
        return source.stories[0]
    from ..story import Position, Range

    return Story(id="<query>", file="<query>", text=line, range=Range(Position(0, 0, 0), Position(0, len(line), len(line))))

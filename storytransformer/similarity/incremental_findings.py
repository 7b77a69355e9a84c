"""Semantic findings kept between edits: after one edit only the stories it can affect are recomputed.

The daemon refreshes ST603-ST605 after every settled edit. Building every finding of a 20,000-story
workspace again costs seconds of CPU on two cores, while one edit changes the findings of a handful
of stories. The result must still be exactly what :func:`.workspace_findings.semantic_findings`
gives for the same index (same findings, same order, same messages), so this module recomputes a
story's findings whenever anything they are made of may have changed:

* the story itself (its text, range, id, suppressions) or its file's suppressions;
* the related pairs of its slot (its distinct text in the index): which other texts, with which
  relation and similarity. The index decides the relations afresh on every change (a new nearest
  neighbour moves the near-best margin, and the stand-out z-score of every duplicate candidate moves
  with the workspace's spread of cosines), so the related pairs of *every* slot are compared with the
  previous ones: that comparison is cheap, building findings is not;
* the stories of a related slot (they are named, by file:line, in the message).

Everything else keeps its findings. A large change (no previous state, other settings, another index,
many changed stories) is computed in full through the same per-story builder
(:func:`.workspace_findings.relation_finding`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..file_ignores import codes_ignored
from ..findings import Finding
from ..story import Story
from .classify import ORDER, Relation
from .workspace_findings import CODES, enabled_codes, settings_key, relation_finding

Key = tuple[str, str]
Link = tuple[int, Relation, float]  # (other slot, relation, similarity)
MIN_FULL_STORIES = 64  # more changed stories than this (and than FULL_SHARE of all) -> full computation
FULL_SHARE = 0.02
SLOT_SPAN = 1 << 32  # pair key: lower slot * SLOT_SPAN + higher slot


@dataclass
class RefreshStats:
    """What the last refresh did: for the daemon's log and the benchmark."""

    mode: str = "none"  # full | incremental | off
    reason: str = ""
    changed_stories: int = 0
    recomputed_stories: int = 0
    # slots whose related pairs changed although none of their stories nor of their related stories did:
    # a nearer neighbour elsewhere (the near-best margin) or the workspace's spread of cosines (the z-score)
    relinked_elsewhere: int = 0
    changed_files: list[str] = field(default_factory=list)


class IncrementalFindings:
    """The semantic findings of one workspace and one index, refreshed from what changed."""

    def __init__(self) -> None:
        self._signature: tuple | None = None
        self._index = None  # the index the findings were built from (a reference: an id could be reused)
        self._sources: dict[str, object] = {}  # path -> the SourceFile object seen last time
        self._file_keys: dict[str, list[Key]] = {}  # path -> keys of its stories last time
        self._stories: dict[Key, Story] = {}
        self._slot_of: dict[Key, int] = {}
        self._suppressed: dict[str, frozenset[str]] = {}  # a file's own suppressions and its per-file-ignores
        self._pairs: _Pairs | None = None  # the related pairs of the enabled relations, last time
        self._by_story: dict[Key, list[Finding]] = {}
        self._by_file: dict[str, list[Finding]] = {}
        self.stats = RefreshStats()

    # -- results -------------------------------------------------------------
    def by_file(self) -> dict[str, list[Finding]]:
        """Findings per file (files without findings are left out), each list in the full order."""
        return {p: fs for p, fs in self._by_file.items() if fs}

    def findings(self) -> list[Finding]:
        """Every finding, in the order :func:`.workspace_findings.semantic_findings` returns them."""
        return sorted((f for fs in self._by_file.values() for f in fs), key=Finding.sort_key)

    def reset(self) -> None:
        self.__init__()

    # -- refreshing ------------------------------------------------------------
    def refresh(self, workspace, config, index) -> set[str]:
        """Bring the findings up to date with ``workspace`` (``index`` must already be synchronised with
        it); returns the files whose findings changed. On any error the state is dropped, so the next
        call computes everything again rather than building on a half-updated state."""
        try:
            return self._refresh(workspace, config or workspace.config, index)
        except BaseException:
            self.reset()
            raise

    def _refresh(self, workspace, config, index) -> set[str]:
        on = enabled_codes(config)
        if not on or not getattr(config.similarity, "enabled", True):
            changed = {p for p, fs in self._by_file.items() if fs}
            self.reset()
            self.stats = RefreshStats(mode="off", changed_files=sorted(changed))
            return changed
        signature = (tuple(sorted((c, str(s)) for c, s in on.items())), settings_key(config.similarity),
                     getattr(config, "root", None),
                     tuple(sorted((g, tuple(c)) for g, c in (getattr(config, "per_file_ignores", None) or {}).items())))
        sources = dict(workspace.files)
        reason = ""
        if self._signature is None:
            reason = "first computation"
        elif signature != self._signature:
            reason = "other settings"
        elif index is not self._index:
            reason = "another index"
        changed_keys: set[Key] = set()
        changed_paths: set[str] = set()
        if not reason:
            changed_paths = {p for p in sources.keys() | self._sources.keys()
                             if sources.get(p) is not self._sources.get(p)}
            changed_keys, retexted = self._changed_keys(sources, changed_paths)
            # Stories that only moved (lines inserted above them) keep their text and their related
            # pairs: rebuilding their findings is cheap whatever their number. Many new texts are not.
            if retexted > max(MIN_FULL_STORIES, int(len(index) * FULL_SHARE)):
                reason = f"{retexted} stories changed their text"
        pairs = _Pairs.of(index, on)
        if reason:
            return self._full(sources, pairs, on, signature, index, reason, config)
        return self._incremental(sources, changed_paths, changed_keys, pairs, on, index, config)

    def _changed_keys(self, sources: dict, paths: set[str]) -> tuple[set[Key], int]:
        """Stories added, removed or different (text, range, id, suppressions) in the files ``paths``,
        and how many of them were added, removed or have another text."""
        out: set[Key] = set()
        retexted = 0
        for p in paths:
            old = self._file_keys.get(p, [])
            new = {(s.file, s.id): s for s in getattr(sources.get(p), "stories", ())}
            gone = [k for k in old if k not in new]
            out.update(gone)
            retexted += len(gone)
            for k, s in new.items():
                before = self._stories.get(k)
                if before != s:
                    out.add(k)
                    retexted += before is None or before.text != s.text
        return out, retexted

    def _story_findings(self, story: Story, links: list[Link], on, index, file_suppressed, root) -> list[Finding]:
        grouped: dict[Relation, list[tuple[Story, float]]] = {}
        for other, relation, similarity in links:
            grouped.setdefault(relation, []).extend((o, similarity) for o in index.members(other))
        out = []
        for relation, others in grouped.items():
            found = relation_finding(story, relation, others, on, file_suppressed, root, index)
            if found is not None:
                out.append(found)
        return out

    def _full(self, sources, pairs: "_Pairs", on, signature, index, reason, config) -> set[str]:
        before = {p: fs for p, fs in self._by_file.items() if fs}
        self.reset()
        self._signature, self._index = signature, index
        self._pairs = pairs
        links = pairs.links()
        root = signature[2]
        self._remember_sources(sources, set(sources), config)
        by_file: dict[str, list[Finding]] = defaultdict(list)
        for key, story in self._stories.items():
            slot = index.slot_of(key)
            self._slot_of[key] = slot
            found = self._story_findings(story, links.get(slot, []), on, index,
                                         self._suppressed.get(story.file, frozenset()), root) if slot is not None else []
            if found:
                self._by_story[key] = found
                by_file[story.file].extend(found)
        self._by_file = {p: sorted(fs, key=Finding.sort_key) for p, fs in by_file.items()}
        changed = {p for p in before.keys() | self._by_file.keys() if before.get(p) != self._by_file.get(p)}
        self.stats = RefreshStats(mode="full", reason=reason, changed_stories=len(self._stories),
                                  recomputed_stories=len(self._stories), changed_files=sorted(changed))
        return changed

    def _remember_sources(self, sources: dict, paths: set[str], config) -> None:
        """Record the stories and suppressions of the files ``paths`` as they are now."""
        for p in paths:
            for k in self._file_keys.pop(p, []):
                self._stories.pop(k, None)
            source = sources.get(p)
            if source is None:
                self._sources.pop(p, None)
                self._suppressed.pop(p, None)
                continue
            self._sources[p] = source
            self._suppressed[p] = getattr(source, "suppressed", frozenset()) | codes_ignored(config, p)
            keys = []
            for s in getattr(source, "stories", ()):
                key = (s.file, s.id)
                if key not in self._stories:
                    keys.append(key)
                self._stories[key] = s
            self._file_keys[p] = keys

    def _incremental(self, sources, changed_paths, changed_keys, pairs: "_Pairs", on, index, config) -> set[str]:
        old_slot_of = self._slot_of
        old_suppressed = {p: self._suppressed.get(p) for p in changed_paths}
        self._remember_sources(sources, changed_paths, config)
        # Slots whose stories changed (the old and the new slot of each changed story).
        moved: set[int] = set()
        for key in changed_keys:
            if key in old_slot_of:
                moved.add(old_slot_of.pop(key))
            slot = index.slot_of(key)
            if slot is not None:
                old_slot_of[key] = slot
                moved.add(slot)
        # Slots whose related pairs changed, anywhere in the workspace, and the slots related to a
        # moved one (its stories are named in their findings).
        relinked = pairs.changed_since(self._pairs)
        near_moved = moved | pairs.related_to(moved)
        affected = near_moved | relinked
        # for the statistics only: slots that were related to a moved one before the edit (not "elsewhere")
        near_moved |= self._pairs.related_to(moved) if self._pairs is not None else set()
        self._pairs = pairs
        keys: set[Key] = set(changed_keys)
        for slot in affected:
            keys.update((s.file, s.id) for s in index.members(slot))
        for p in changed_paths:  # a file's own suppressions changed: all its stories
            if old_suppressed.get(p) != self._suppressed.get(p):
                keys.update(self._file_keys.get(p, ()))
        links = pairs.links({old_slot_of[k] for k in keys if k in old_slot_of})
        root = self._signature[2]
        touched: set[str] = set()
        for key in keys:
            old = self._by_story.pop(key, None)
            if old:
                touched.add(key[0])
            story = self._stories.get(key)
            slot = old_slot_of.get(key)
            if story is None or slot is None:
                continue
            found = self._story_findings(story, links.get(slot, []), on, index,
                                         self._suppressed.get(story.file, frozenset()), root)
            if found:
                self._by_story[key] = found
                touched.add(key[0])
        changed = set()
        for p in touched | changed_paths:
            fs = sorted((f for k in self._file_keys.get(p, ()) for f in self._by_story.get(k, ())), key=Finding.sort_key)
            if fs != self._by_file.get(p, []):
                changed.add(p)
            if fs:
                self._by_file[p] = fs
            else:
                self._by_file.pop(p, None)
        self.stats = RefreshStats(mode="incremental", changed_stories=len(changed_keys), recomputed_stories=len(keys),
                                  changed_files=sorted(changed), relinked_elsewhere=len(relinked - near_moved))
        return changed


class _Pairs:
    """The related pairs of the enabled relations as sorted arrays: compared with the previous refresh's
    in a few vectorised steps, where a dictionary of every slot's pairs would cost a Python loop over
    tens of thousands of pairs on every edit."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, code: np.ndarray, similarity: np.ndarray, a: np.ndarray,
                 b: np.ndarray):
        self.lo, self.hi, self.code, self.similarity, self.a, self.b = lo, hi, code, similarity, a, b
        self.key = lo * SLOT_SPAN + hi
        self.repeated = set()  # slots of a pair listed twice (never expected; compared conservatively)
        if len(self.key) > 1:
            twice = np.flatnonzero(self.key[1:] == self.key[:-1])
            self.repeated = set(lo[twice].tolist()) | set(hi[twice].tolist())

    @classmethod
    def of(cls, index, on: dict) -> "_Pairs":
        a, b, code, similarity = index.related_arrays()
        wanted = [ORDER.index(relation) for relation, c in CODES.items() if c in on]
        keep = np.isin(code, wanted)
        a, b, code, similarity = a[keep].astype(np.int64), b[keep].astype(np.int64), code[keep], similarity[keep]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        order = np.argsort(lo * SLOT_SPAN + hi, kind="stable")
        return cls(lo[order], hi[order], code[order], similarity[order], a[order], b[order])

    def _unmatched(self, other: "_Pairs") -> np.ndarray:
        """Rows of self with no pair of the same slots, relation and similarity in ``other``."""
        if not len(self.key):
            return np.zeros(0, np.int64)
        if not len(other.key):
            return np.arange(len(self.key))
        at = np.minimum(np.searchsorted(other.key, self.key), len(other.key) - 1)
        same = (other.key[at] == self.key) & (other.code[at] == self.code) & (other.similarity[at] == self.similarity)
        return np.flatnonzero(~same)

    def changed_since(self, old: "_Pairs | None") -> set[int]:
        """Slots whose related pairs differ from ``old``'s (all slots having pairs when there is none)."""
        if old is None:
            return set(self.lo.tolist()) | set(self.hi.tolist())
        mine, theirs = self._unmatched(old), old._unmatched(self)
        out = set(self.lo[mine].tolist()) | set(self.hi[mine].tolist())
        out |= set(old.lo[theirs].tolist()) | set(old.hi[theirs].tolist())
        return out | self.repeated | old.repeated

    def related_to(self, slots: set[int]) -> set[int]:
        """The slots having a related pair with one of ``slots``."""
        if not slots or not len(self.key):
            return set()
        wanted = np.fromiter(slots, np.int64)
        return set(self.hi[np.isin(self.lo, wanted)].tolist()) | set(self.lo[np.isin(self.hi, wanted)].tolist())

    def links(self, slots: set[int] | None = None) -> dict[int, list[Link]]:
        """The related pairs of ``slots`` (default: every slot), per slot: (other slot, relation, similarity)."""
        if slots is None:
            rows = np.arange(len(self.key))
        elif not slots or not len(self.key):
            return {}
        else:
            wanted = np.fromiter(slots, np.int64)
            rows = np.flatnonzero(np.isin(self.lo, wanted) | np.isin(self.hi, wanted))
        out: dict[int, list[Link]] = defaultdict(list)
        for a, b, code, similarity in zip(self.a[rows].tolist(), self.b[rows].tolist(), self.code[rows].tolist(),
                                          self.similarity[rows].tolist()):
            relation = ORDER[code]
            if slots is None or a in slots:
                out[a].append((b, relation, similarity))
            if slots is None or b in slots:
                out[b].append((a, relation, similarity))
        return out

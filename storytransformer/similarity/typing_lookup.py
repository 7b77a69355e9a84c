"""Which stories already ask for what the story being typed asks: a lookup for every keystroke batch.

A writer about to add a story that the backlog already has should see the existing one while typing,
not after saving. The language server asks this (through the daemon) with the unfinished line; the
answer must come well inside 300 ms at 20,000 stories on two cores, so the lookup

* embeds the typed line and its half-typed means in one encode call, with the role the first time
  it is typed (the workspace's stories were embedded part by part by the similarity index and are
  only read here, from an immutable snapshot of its whole, means and role vectors),
* ranks every distinct story text by one matrix-vector product per part: the typed line against the
  whole story, the half means against the story's means (like with like: a half story against whole
  stories carries little), and the role against its role (a generated or merged backlog holds the
  same means under several roles, and the role typed tells which one the writer means), and
* shows the one figure the rest of the product shows for a pair: the cosine of the whole texts
  (``similar``, ST603-ST605 and the report say the same number for the same two texts).

Half a story scores lower than two whole stories do, so the thresholds are the typing lookup's own
(:data:`THRESHOLD` on the part-wise score decides what is offered, :data:`CONFIDENT` on the whole
cosine what the editor calls "Already asked" rather than "Maybe asked"), tuned on the tune part of the
labelled paraphrase pairs in benchmarks/typing_duplicates_bench.py and reported there on the held-out part.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..story import Story

THRESHOLD = 0.48  # part-wise score (:func:`part_score`) at which a story is offered; tuned on the tune pairs
CONFIDENT = 0.62  # whole cosine at which an offered story is called "Already asked" (docs/benchmarks/typing_duplicates.md)
ROLE_WEIGHT = 0.8  # the role's weight next to whole and means (1 each); tuned on the tune pairs
NO_ROLE = 0.3  # the role cosine assumed when the typed line or the story has none: about two unrelated roles
MAX_MATCHES = 5  # stories offered: the tune pairs' partner found 57/70 at 3, 59/70 at 5 (docs/benchmarks/typing_duplicates.md)
ROLES_KEPT = 64  # typed roles whose vectors are kept (a writer types few roles)
MIN_MEANS_WORDS = 2  # "As a user, I want to" + one word says too little to name a duplicate
_WORD = re.compile(r"\S+")


def is_confident(similarity: float) -> bool:
    """Close enough as a whole to call the story "Already asked" (else "Maybe asked")."""
    return similarity >= CONFIDENT - 1e-6


@dataclass(frozen=True, slots=True)
class Match:
    """A story that already asks what the typed line asks."""

    story: Story
    similarity: float  # cosine of the whole typed line and the whole story (the product's one figure)
    score: float | None = None  # the part-wise score it was ranked and offered by (None: whole only)

    @property
    def line(self) -> int:
        """0-based line of the story in its file."""
        return self.story.line


def typed_story(line: str) -> Story | None:
    """The story being typed on ``line`` when it says enough to look for duplicates: a means (after
    "I want to", "I need", ...) of at least :data:`MIN_MEANS_WORDS` words; the role and the ends may be
    missing or incomplete. None for anything else (a heading, a role still being typed, prose)."""
    from .index import parse_query

    if not line.strip():
        return None
    story = parse_query(line)
    if story.means is None or len(_WORD.findall(story.means.text)) < MIN_MEANS_WORDS:
        return None
    return story


def first_half(text: str) -> str:
    """``text`` cut after the first half (rounded up) of its means' words: what a writer has typed
    halfway through a story; the first half of all words when no means is recognised. The benchmark
    and the tests type stories this way."""
    from .index import parse_query

    story = parse_query(text)
    if story.means is not None:
        words = list(_WORD.finditer(story.means.text))
        keep = max(MIN_MEANS_WORDS, (len(words) + 1) // 2)
        at = text.find(story.means.text)
        if at >= 0:
            return text[:at + words[min(keep, len(words)) - 1].end()]
    words = text.split()
    return " ".join(words[:max(1, (len(words) + 1) // 2)])


def part_score(whole: np.ndarray, means: np.ndarray, role: np.ndarray) -> np.ndarray:
    """The score a story is ranked and offered by: whole, means and role cosines averaged with the
    weights tuned on the tune pairs (the role counts less: writers restate roles freely)."""
    return (whole + means + ROLE_WEIGHT * role) / (2.0 + ROLE_WEIGHT)


@dataclass(frozen=True, slots=True)
class Query:
    """The unit vectors of a typed line: the whole line, its means, its role (None when not typed)."""

    whole: np.ndarray
    means: np.ndarray | None = None
    role: np.ndarray | None = None


class Snapshot:
    """The whole-story vectors of every distinct story text of an index (with its means and role
    vectors when the index has them) and the stories having each text, copied once per index update
    so lookups may run on another thread than the index's."""

    def __init__(self, vectors: np.ndarray, stories: Sequence[Sequence[Story]], means: np.ndarray | None = None,
                 roles: np.ndarray | None = None, has_role: np.ndarray | None = None):
        if len(vectors) != len(stories):
            raise ValueError(f"{len(vectors)} vectors for {len(stories)} story texts")
        for name, part in (("means", means), ("role", roles), ("has-role", has_role)):
            if part is not None and len(part) != len(vectors):
                raise ValueError(f"{len(part)} {name} rows for {len(vectors)} story texts")
        self.vectors = np.ascontiguousarray(vectors, np.float32)
        self.means = None if means is None else np.ascontiguousarray(means, np.float32)
        self.roles = None if roles is None else np.ascontiguousarray(roles, np.float32)
        self.has_role = None if has_role is None else np.asarray(has_role, bool)
        self.stories = [tuple(group) for group in stories]

    @classmethod
    def of_index(cls, index) -> "Snapshot":
        """A snapshot of a :class:`~.index.SimilarityIndex` (call it where the index is updated)."""
        vectors, groups = index.whole_rows()
        means, roles, has_role = index.part_rows()
        return cls(vectors, groups, means, roles, has_role)

    def __len__(self) -> int:
        return sum(len(g) for g in self.stories)

    def scores(self, query: "Query | np.ndarray") -> tuple[np.ndarray, np.ndarray]:
        """(whole cosine, ranking score) of every story text for ``query``: the part-wise score when
        both the query and the snapshot have the parts, else the whole cosine itself."""
        if not isinstance(query, Query):
            query = Query(np.asarray(query, np.float32))
        whole = self.vectors @ np.asarray(query.whole, np.float32)
        if query.means is None or self.means is None:
            return whole, whole
        means = self.means @ np.asarray(query.means, np.float32)
        if query.role is not None and self.roles is not None:
            role = self.roles @ np.asarray(query.role, np.float32)
            if self.has_role is not None:
                role = np.where(self.has_role, role, np.float32(NO_ROLE))
        else:
            role = np.full(len(whole), NO_ROLE, np.float32)
        return whole, part_score(whole, means, role)

    def search(self, vector: "Query | np.ndarray", k: int = MAX_MATCHES, threshold: float = THRESHOLD,
               skip: Callable[[Story], bool] | None = None) -> list[Match]:
        """The stories closest to ``vector`` (a unit vector of the whole line, or a :class:`Query` with
        its parts), best first: at most ``k`` distinct texts whose ranking score is ``threshold`` or
        above, one story per text (its first place in file order), leaving out stories ``skip`` names
        (the line being typed)."""
        if not len(self.vectors) or k <= 0:
            return []
        whole, sims = self.scores(vector)
        wanted = min(len(sims), 4 * k + 8)  # room for skipped stories
        top = np.argpartition(-sims, wanted - 1)[:wanted] if wanted < len(sims) else np.arange(len(sims))
        out: list[Match] = []
        for row in top[np.lexsort((top, -sims[top]))].tolist():
            score = float(sims[row])
            if score < threshold - 1e-6 or len(out) >= k:
                break
            kept = [s for s in self.stories[row] if skip is None or not skip(s)]
            if kept:
                first = min(kept, key=lambda s: (s.file, s.line))
                out.append(Match(first, min(float(whole[row]), 1.0), min(score, 1.0)))
        return out


def skip_typed(path: str | None, line: int | None, typed: Story | None = None) -> Callable[[Story], bool]:
    """Leave out the story being typed: whatever the index holds at the cursor's line of the same file
    (the unsaved text as the daemon last saw it, a keystroke or a few ago); and, given the ``typed``
    story, the stories whose means leads with another operation than its means."""
    from .compared_parts import StoryTexts, other_operation

    typed_means = StoryTexts.of(typed).means_or_whole if typed is not None else None

    def skip(story: Story) -> bool:
        if story.file == path and story.range.contains_line(line if line is not None else -1):
            return True
        return typed_means is not None and other_operation(typed_means, StoryTexts.of(story).means_or_whole)

    return skip


class TypingLookup:
    """The lookup of one workspace: the latest snapshot and the embedding model (one encode per request)."""

    def __init__(self, embedder, snapshot: Snapshot | None = None):
        self.embedder = embedder
        self.snapshot = snapshot
        self._roles: OrderedDict[str, np.ndarray] = OrderedDict()  # the role stays while the means is typed

    def refresh(self, index) -> None:
        """Take a new snapshot of ``index`` (on the thread that updates it)."""
        self.snapshot = Snapshot.of_index(index)

    def embed(self, text: str) -> np.ndarray:
        """One unit vector for ``text`` (see :meth:`embed_all`)."""
        return self.embed_all([text])[0]

    def embed_all(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for ``texts`` in one encode call, straight from the model: partial lines change
        with every keystroke and are not worth a place in the embedding cache (nor a lock on it).

        A few short texts gain nothing from intra-op threads, and on two busy cores their barriers cost
        dearly: measured here under a load average of 8, 500 ms with two threads against 13-20 ms with
        one. The thread that embeds the typed line therefore uses one (the setting is per thread, so
        the index's bulk embedding keeps its own)."""
        _one_thread()
        v = np.asarray(self.embedder.model.encode(list(texts), convert_to_numpy=True, show_progress_bar=False),
                       np.float32)
        n = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.where(n > 0, n, 1.0)

    def query(self, story: Story) -> Query:
        """The vectors of a typed story: whole line, means, role (one encode call). A role is embedded
        once: it is typed first and stays the same while every keystroke of the means asks again."""
        texts = [story.text, story.means.text if story.means is not None else story.text]
        role = " ".join(story.role.text.split()) if story.role is not None else ""
        known = self._roles.get(role) if role else None
        if role and known is None:
            texts.append(role)
        v = self.embed_all(texts)
        if role and known is None:
            known = self._roles[role] = v[2]
            while len(self._roles) > ROLES_KEPT:
                self._roles.popitem(last=False)
        elif known is not None:
            self._roles.move_to_end(role)
        return Query(v[0], v[1], known)

    def find(self, line: str, path: str | None = None, line_no: int | None = None, k: int = MAX_MATCHES,
             threshold: float = THRESHOLD) -> list[Match]:
        """The stories that already ask what ``line`` (typed at ``path``:``line_no``, 0-based) asks. A story
        whose means leads with another operation than the typed one ("export data" typed, "import data"
        asked) is a sibling, not the same need, and is not offered (:func:`.compared_parts.other_operation`,
        the rule the semantic findings use)."""
        snapshot = self.snapshot
        story = typed_story(line)
        if snapshot is None or story is None:
            return []
        return snapshot.search(self.query(story), k, threshold, skip_typed(path, line_no, story))


def _one_thread() -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - sentence-transformers needs torch
        return
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)

"""Does a merged story keep everything its sources asked for?

The product rule for every merge (the deterministic one, the model's, the editor's): the merged
story keeps every source's means and every distinct ends, and its role covers every source's role
(the same role, or one that names them all: "As a visitor or researcher"). Compared by content
word (Snowball stem, function words ignored, as the grounding validator does); a negation ("not",
"no", "never") counts as content, so "I do not pay a late fee" is not kept by "I pay a late fee".

:func:`keeps_every_need` is the one check; every merge path refuses a merge that fails it and
shows its :attr:`NeedCheck.reason`, which names the story, the part and the words that would be lost.

Duplicates (``same_need``: the sources ask for the same thing in other words, as the detector's
ST603 or the user says) need not be concatenated: a part of one source that the merged story does
not repeat is *said by the other source* when the merged story keeps that other source's part of the
same kind (its role, means or ends) whole. The check lists those parts (:attr:`NeedCheck.said`) so
the product owner sees every wording that was set aside; a part with no counterpart is still lost.
Two duplicates may still give different benefits ("so that I do not pay a late fee", "so that I can
keep reading it for longer"): a benefit is set aside only when :attr:`SameNeed.benefits_alike` judges
the kept one to say it (by shared words here; by meaning in :mod:`.benefits`, when a model is at hand).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ..places import place
from ..words import WORD, content_words, source_text, stem
from ..story import Story

NEGATIONS = frozenset({"not", "no", "never", "nor", "cannot"})


def need_words(text: str) -> dict[str, str]:
    """Stem -> surface form of the words of ``text`` that carry a need: content words and negations."""
    words = content_words(text)
    for w in WORD.findall(text):
        lw = w.lower().replace("’", "'")
        if lw in NEGATIONS or lw.endswith("n't"):
            words.setdefault(stem(lw), w)
    return words


def adds_a_goal(aside: str, kept: str) -> bool:
    """``aside`` says everything ``kept`` says and more ("get back to the data and import it" for
    "get back to the data"): it cannot be set aside for ``kept``, whatever their meanings' distance."""
    a, k = set(need_words(aside)), set(need_words(kept))
    return k <= a and bool(a - k)


def shared_words_alike(aside: str, kept: str, aside_means: str | None = None, kept_means: str | None = None) -> bool:
    """The judge with no model: the benefits share at least half of the shorter one's need words and
    ``aside`` adds no goal. Paraphrased benefits share few words, so it keeps most of them (both are
    kept in the merge: said twice rather than lost)."""
    a, k = set(need_words(aside)), set(need_words(kept))
    if not a or not k or adds_a_goal(aside, kept):
        return False
    return len(a & k) * 2 >= min(len(a), len(k))


# (benefit set aside, benefit the merged story keeps, and the two stories' means where known) -> do they
# state the same benefit? (The means let a judge by meaning ask less of the benefits of two stories that
# want the same thing in nearly the same words: see benefits.cut_for.)
BenefitsAlike = Callable[[str, str, "str | None", "str | None"], bool]


def means_text(story: Story) -> str | None:
    """The story's means as the judge of benefits reads it (None when it has none)."""
    if story.means is None:
        return None
    return story.means.text.strip(" ,.;") or None


@dataclass(frozen=True)
class SameNeed:
    """The sources ask for the same thing (duplicates), with the judge that says whether one
    source's benefit may be set aside for another's: ``True`` as a ``same_need`` argument means
    the judge with no model (:func:`shared_words_alike`)."""

    benefits_alike: BenefitsAlike = shared_words_alike

    @staticmethod
    def of(value: "bool | SameNeed | None") -> "SameNeed | None":
        if isinstance(value, SameNeed):
            return value
        return SameNeed() if value else None


@dataclass(frozen=True)
class Said:
    """A source part the merged story leaves out because another source's part of the same kind,
    which it keeps, says the same need (duplicates only)."""

    source: str  # the story whose words are set aside (its id, or file:line)
    kind: str  # role | means | ends
    text: str  # that part as its story wrote it
    by: str  # the story whose part of the same kind the merged story keeps

    def __str__(self) -> str:
        return f"{self.source}'s {self.kind} {self.text!r} (said by {self.by})"


@dataclass(frozen=True)
class NeedCheck:
    """The verdict: ``kept`` is True when nothing is lost; ``lost`` names what would be, one entry per
    source part; ``said`` the parts set aside because another source says them (duplicates)."""

    kept: bool
    lost: tuple[str, ...] = ()
    said: tuple[Said, ...] = ()

    def __bool__(self) -> bool:
        return self.kept

    @property
    def reason(self) -> str:
        return "" if self.kept else "it would lose " + "; ".join(self.lost)


def story_label(story: Story) -> str:
    """The story's own id where the file gives one, else file:line."""
    if story.explicit_id and story.id:
        return story.id
    return place(story.file, story.line)


def _merged_parts(merged: str | Story) -> tuple[str, str | None]:
    """(whole text, role text or None) of the merged story."""
    if isinstance(merged, Story):
        return merged.text, merged.role.text if merged.role else None
    from ..formats.text import read_text

    found = read_text("merged.txt", merged.replace("\n", " ") + "\n").stories
    role = found[0].role.text if len(found) == 1 and found[0].role else None
    return merged, role


def _source_parts(story: Story) -> list[tuple[str, str]]:
    return [(p.kind, p.text) for p in story.parts()] or [("text", source_text(story))]


def keeps_every_need(merged: str | Story, sources: Sequence[Story], same_need: "bool | SameNeed" = False) -> NeedCheck:
    """Whether ``merged`` keeps every source's role, means and ends (by content word). With
    ``same_need`` (duplicates), a part left out counts as said by another source when the merged
    story keeps that source's part of the same kind whole (see :class:`Said`); a benefit only when
    the judge of ``same_need`` finds the two benefits alike."""
    duplicates = SameNeed.of(same_need)
    text, role = _merged_parts(merged)
    have = set(need_words(text))
    role_have = set(need_words(role)) if role is not None else have

    def whole(kind: str, part: str) -> bool:
        return set(need_words(part)) <= (role_have if kind == "role" else have)

    lost: list[str] = []
    said: list[Said] = []
    for s in sources:
        for kind, part in _source_parts(s):
            pool = role_have if kind == "role" else have
            missing = [w for st, w in need_words(part).items() if st not in pool]
            if not missing:
                continue
            by = next((o for o in sources if duplicates and o is not s and kind != "text"
                       and any(k == kind and need_words(t) and whole(k, t)
                               and (kind != "ends" or duplicates.benefits_alike(part.strip(" ,.;"), t.strip(" ,.;"),
                                                                                means_text(s), means_text(o)))
                               for k, t in _source_parts(o))), None)
            if by is not None:
                said.append(Said(story_label(s), kind, part.strip(" ,.;"), story_label(by)))
            else:
                lost.append(f"{story_label(s)}'s {kind} ({', '.join(repr(w) for w in missing)} of {part.strip(' ,.;')!r})")
    return NeedCheck(not lost, tuple(lost), tuple(said))


REQUIREMENTS = ("role", "action", "object", "benefit")


def requirements(story: Story) -> dict[str, str]:
    """The story's requirements by kind: who (role), the action (the means' first content word),
    its object (the rest of the means) and the benefit (ends); a kind the story lacks is absent."""
    out: dict[str, str] = {}
    if story.role is not None and need_words(story.role.text):
        out["role"] = story.role.text.strip(" ,.;")
    if story.means is not None:
        words = [w for w in need_words(story.means.text).values()]
        if words:
            out["action"] = words[0]
        if len(words) > 1:
            out["object"] = " ".join(words[1:])
    if story.ends is not None and need_words(story.ends.text):
        out["benefit"] = story.ends.text.strip(" ,.;")
    return out


@dataclass(frozen=True)
class Coverage:
    """How many source requirements a merged story keeps: ``present`` in its words, ``said`` (left
    out because another source's part of that kind, kept, says it), of ``total``."""

    present: int
    said: int
    total: int

    @property
    def share(self) -> float:
        return (self.present + self.said) / self.total if self.total else 1.0


def coverage(merged: str, sources: Sequence[Story], check: NeedCheck) -> Coverage:
    """Each source's role, action, object and benefit counted once: present when all its need words
    are in ``merged`` (the role in its role), else said when ``check`` lists that part as said by
    another source, else lost."""
    text, role = _merged_parts(merged)
    have = set(need_words(text))
    role_have = set(need_words(role)) if role is not None else have
    said_parts = {(x.source, x.kind) for x in check.said}
    part_of = {"role": "role", "action": "means", "object": "means", "benefit": "ends"}
    present = said = total = 0
    for s in sources:
        for kind, value in requirements(s).items():
            total += 1
            if set(need_words(value)) <= (role_have if kind == "role" else have):
                present += 1
            elif (story_label(s), part_of[kind]) in said_parts:
                said += 1
    return Coverage(present, said, total)


def covers(a: str, b: str) -> bool:
    """Every need word of ``b`` is in ``a``."""
    return set(need_words(b)) <= set(need_words(a))

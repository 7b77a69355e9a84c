"""Does a merged story keep everything its sources asked for?

The product rule for every merge (the deterministic one, the model's, the editor's): the merged
story keeps every source's means and every distinct ends, and its role covers every source's role
(the same role, or one that names them all: "As a visitor or researcher"). Compared by content
word (Snowball stem, function words ignored, as the grounding validator does); a negation ("not",
"no", "never") counts as content, so "I do not pay a late fee" is not kept by "I pay a late fee".

:func:`keeps_every_need` is the one check; every merge path refuses a merge that fails it and
shows its :attr:`NeedCheck.reason`, which names the story, the part and the words that would be lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


@dataclass(frozen=True)
class NeedCheck:
    """The verdict: ``kept`` is True when nothing is lost; ``lost`` names what would be, one entry per source part."""

    kept: bool
    lost: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.kept

    @property
    def reason(self) -> str:
        return "" if self.kept else "it would lose " + "; ".join(self.lost)


def _label(story: Story) -> str:
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


def keeps_every_need(merged: str | Story, sources: Sequence[Story]) -> NeedCheck:
    """Whether ``merged`` keeps every source's role, means and ends (by content word)."""
    text, role = _merged_parts(merged)
    have = set(need_words(text))
    role_have = set(need_words(role)) if role is not None else have
    lost: list[str] = []
    for s in sources:
        parts = [(p.kind, p.text) for p in s.parts()] or [("text", source_text(s))]
        for kind, part in parts:
            pool = role_have if kind == "role" else have
            missing = [w for st, w in need_words(part).items() if st not in pool]
            if missing:
                lost.append(f"{_label(s)}'s {kind} ({', '.join(repr(w) for w in missing)} of {part.strip(' ,.;')!r})")
    return NeedCheck(not lost, tuple(lost))


def covers(a: str, b: str) -> bool:
    """Every need word of ``b`` is in ``a``."""
    return set(need_words(b)) <= set(need_words(a))

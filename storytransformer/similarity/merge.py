"""A deterministic merged story for a cluster of overlapping stories (the fallback with no model).

It keeps every role ("As a visitor or researcher"), joins the objects only where the means are
the same action ("export the reports and the invoices"), and takes the ends of the most specific
story (the one with the most content words). Every word comes from the sources or the template;
the engine ranks this candidate with the others and validates it like any proposal.
"""

from __future__ import annotations

import re
from typing import Sequence

from ..fixes import article_for
from ..story import Story

STOPWORDS = frozenset("a an the to of for and or in on at by with my our their its i we be able so that".split())


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip(" ,.;")


def _unique(values: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for v in values:
        seen.setdefault(v.lower(), v)
    return list(seen.values())


def join_words(items: list[str], conjunction: str) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def merged_means(means: list[str]) -> str:
    """One means for all: identical ones once; the same action with its objects joined; else the first."""
    unique = _unique([_clean(m) for m in means])
    if len(unique) == 1:
        return unique[0]
    verbs = {m.split()[0].lower() for m in unique}
    if len(verbs) == 1 and all(len(m.split()) > 1 for m in unique):
        verb = unique[0].split()[0]
        return f"{verb} {join_words([m.split(None, 1)[1] for m in unique], 'and')}"
    return unique[0]


def specificity(text: str) -> int:
    return sum(1 for w in re.findall(r"[\w']+", text.lower()) if w not in STOPWORDS)


def merge_cluster(stories: Sequence[Story]) -> str | None:
    """The merged story text, or None when fewer than two stories have a means."""
    usable = [s for s in stories if s.means is not None]
    if len(usable) < 2:
        return None
    roles = _unique([_clean(s.role.text) for s in usable if s.role])
    first = usable[0]
    marker = first.role.marker if first.role else "As a"
    if roles:
        article = marker.split()[1].lower() if len(marker.split()) > 1 else ""
        if article in ("a", "an"):
            marker = f"As {article_for(roles[0])}"
        head = f"{marker} {join_words(roles, 'or')}, "
    else:
        head = ""
    means = merged_means([s.means.text for s in usable])
    means_marker = _clean(first.means.marker) or "I want to"
    if not head:
        means_marker = means_marker[:1].upper() + means_marker[1:]
    with_ends = [s for s in usable if s.ends]
    tail = ""
    if with_ends:
        best = max(with_ends, key=lambda s: (specificity(s.ends.text), -usable.index(s)))
        tail = f", {_clean(best.ends.marker)} {_clean(best.ends.text)}"
    return f"{head}{means_marker} {means}{tail}."

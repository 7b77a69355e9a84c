"""A deterministic merged story for a cluster of overlapping stories (the fallback with no model).

It keeps everything the sources asked for (see :mod:`.needs`): every role ("As a visitor or
researcher"; a role that names another, "library member" for "member", once); one means for all,
either the one that contains the others ("renew a borrowed book online" for "renew a book") or the
same action with its objects joined ("export the reports and the invoices"); and every distinct
ends, joined ("so that I can keep reading it for longer and I do not pay a late fee"), an ends that
another already contains once. Every word comes from the sources or the template.

When the means are different actions ("publish articles", "delete articles"), one atomic story
cannot keep both: the merge is refused (:attr:`Merge.reason` says which need would be lost).

Duplicates (``same_need``: the same need in other words) are not concatenated: the merged story
keeps one source's wording of each part and lists the other's as said by that source
(:attr:`Merge.said`); a part only one source has (a benefit the other does not give) is kept, and so
is a benefit the judge of :class:`.needs.SameNeed` finds different from the one kept.
:func:`merge_proposals` gives the first proposal and at most three alternatives (the other
wordings), each with the source of every part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..markers import lead_role, means_with_subject, trailing_ends
from ..story import Story
from .needs import NeedCheck, Said, SameNeed, covers, keeps_every_need

# Findings that say two stories ask for the same thing (exact, near, semantic and model-judged duplicates): their
# merge may keep one wording of a part and list the other's as said by it.
SAME_NEED_CODES = frozenset({"ST601", "ST602", "ST603", "ST606"})
STOPWORDS = frozenset("a an the to of for and or in on at by with my our their its i we be able so that".split())
# Words a means can start with that are no action ("I want the loader to ...", "I want my data kept"): two
# such means share no verb whose objects could be joined.
NOT_ACTIONS = frozenset("a an the my our your their his her its this that these those all some any each every "
                        "more no".split())


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip(" ,.;!?")


def _unique(values: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for v in values:
        seen.setdefault(v.lower(), v)
    return list(seen.values())


def _widest(values: list[str]) -> list[str]:
    """``values`` without those another one already covers (by need words), in order."""
    unique = _unique(values)
    out = []
    for i, v in enumerate(unique):
        if any(j != i and covers(w, v) and (not covers(v, w) or j < i) for j, w in enumerate(unique)):
            continue
        out.append(v)
    return out


def join_words(items: list[str], conjunction: str) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def merged_means(means: list[str]) -> str | None:
    """One means for all: the one that covers the others; the same action with its objects joined;
    else None (different actions: no one atomic story keeps them all)."""
    unique = _widest([_clean(m) for m in means])
    if len(unique) == 1:
        return unique[0]
    # "be able to export X" and "export Y": the action is the word after "be able to"
    able = re.compile(r"(?i)^be able to\s+")
    prefix = able.match(unique[0]).group(0) if all(able.match(m) for m in unique) else ""
    actions = [able.sub("", m) for m in unique]
    verbs = {m.split()[0].lower() for m in actions}
    if len(verbs) == 1 and not verbs & NOT_ACTIONS and all(len(m.split()) > 1 for m in actions):
        verb = actions[0].split()[0]
        return f"{prefix}{verb} {join_words([m.split(None, 1)[1] for m in actions], 'and')}"
    return None


def specificity(text: str) -> int:
    return sum(1 for w in re.findall(r"[\w']+", text.lower()) if w not in STOPWORDS)


@dataclass(frozen=True)
class Merge:
    """The deterministic merge of a cluster: ``text`` when it keeps every need, else None and ``reason``."""

    text: str | None
    check: NeedCheck | None = None
    reason: str = ""
    provenance: tuple[tuple[str, str], ...] = ()  # (part, id of the source story or ids joined by '+')

    @property
    def kept(self) -> bool:
        return self.text is not None

    @property
    def said(self) -> tuple[Said, ...]:
        """Source parts left out because another source says them (duplicates); shown with the merge."""
        return self.check.said if self.check is not None else ()


def _ends_text(story: Story) -> str:
    """The story's ends without a "that" its marker already says ("so that that I can start" is a slip
    that would read "... and that I can start" once joined to another ends)."""
    return re.sub(r"^that\s+", "", _clean(story.ends.text), flags=re.IGNORECASE)


def ends_marker(story: Story) -> str:
    """The marker ``story``'s ends was written with, after the means (:func:`.markers.trailing_ends`);
    "in order to" as "so that I can", which says the same with template words only ("order" is in no
    source's role, means or ends)."""
    marker = trailing_ends(_clean(story.ends.marker))
    return "so that I can" if marker == "in order to" else marker


def role_marker(story: Story, role: str) -> str:
    """``story``'s role marker to start a merged story with (:func:`.markers.lead_role`)."""
    return lead_role(_clean(story.role.marker) if story.role else "", role)


def means_marker(story: Story) -> str:
    """``story``'s means marker with its subject (:func:`.markers.means_with_subject`)."""
    return means_with_subject(_clean(story.means.marker))


def _compose(usable: list[Story], means: str) -> str:
    roles = _widest([_clean(s.role.text) for s in usable if s.role])
    first = usable[0]
    head = f"{role_marker(first, roles[0])} {join_words(roles, 'or')}, " if roles else ""
    # the marker the chosen means was written with ("I want" + "be able to ...", "I want to" + "renew ...")
    source = next((s for s in usable if _clean(s.means.text).lower() == means.lower()), first)
    marker = means_marker(source)
    if not head:
        marker = marker[:1].upper() + marker[1:]
    with_ends = [s for s in usable if s.ends]
    tail = ""
    if with_ends:
        ends = _widest([_ends_text(s) for s in with_ends])
        marker_of = next(s for s in with_ends if _ends_text(s).lower() == ends[0].lower())
        tail = f", {ends_marker(marker_of)} {join_words(ends, 'and') if len(ends) < 3 else ' and '.join(ends)}"
    return f"{head}{marker} {means}{tail}."


def _ids(stories: Sequence[Story]) -> str:
    return "+".join(dict.fromkeys(s.id for s in stories))


def _joined(usable: list[Story]) -> Merge:
    """Every role, one means for all, every distinct ends (the merge that concatenates)."""
    means = merged_means([s.means.text for s in usable])
    # different actions: the best single story still loses one; the check says which
    text = _compose(usable, means if means is not None else _clean(usable[0].means.text))
    check = keeps_every_need(text, usable)
    if not check.kept:
        return Merge(None, check, check.reason)
    return Merge(text, check, provenance=_provenance(usable, text, means))


def _provenance(usable: list[Story], text: str, means: str | None) -> tuple[tuple[str, str], ...]:
    """Which source each part of the joined merge came from: the first story with each role and
    ends the merge keeps; the story whose means it is, or every story when objects were joined."""
    roles = _widest([_clean(s.role.text) for s in usable if s.role])
    ends = _widest([_ends_text(s) for s in usable if s.ends])

    def first(kind: str, value: str) -> Story:
        text = _ends_text if kind == "ends" else (lambda s: _clean(getattr(s, kind).text))
        return next(s for s in usable if getattr(s, kind) and text(s).lower() == value.lower())

    means_from = [s for s in usable if means is not None and _clean(s.means.text).lower() == means.lower()][:1]
    prov = [("role", _ids([first("role", r) for r in roles])), ("means", _ids(means_from or usable)),
            ("ends", _ids([first("ends", e) for e in ends]))]
    return tuple((k, v) for k, v in prov if v)


def _in_words_of(base: Story, usable: list[Story], same_need: SameNeed, join_ends: bool = False) -> Merge:
    """Duplicates: ``base``'s role, means and ends; a part ``base`` lacks from the first source that
    has it; with ``join_ends`` every distinct ends (nothing set aside there)."""
    others = [base] + [s for s in usable if s is not base]
    roles = _widest([_clean(s.role.text) for s in others if s.role])
    # a role that names the others ("data consumer" for "Consumer") is kept rather than set aside
    role_from = next((s for s in others if s.role and (len(roles) != 1 or _clean(s.role.text) == roles[0])), None)
    ends_from = [s for s in others if s.ends]
    widest_ends = _widest([_ends_text(s) for s in ends_from])
    ends = widest_ends if join_ends or len(widest_ends) == 1 else ([_ends_text(ends_from[0])] if ends_from else [])
    head = ""
    if role_from is not None:
        role = _clean(role_from.role.text)
        head = f"{role_marker(role_from, role)} {role}, "
    marker = means_marker(base)
    if not head:
        marker = marker[:1].upper() + marker[1:]
    tail = ""
    if ends:
        marker_of = next(s for s in ends_from if _ends_text(s).lower() == ends[0].lower())
        tail = f", {ends_marker(marker_of)} {' and '.join(ends)}"
    text = f"{head}{marker} {_clean(base.means.text)}{tail}."
    check = keeps_every_need(text, usable, same_need=same_need)
    prov = [("role", role_from.id if role_from else ""), ("means", base.id),
            ("ends", _ids([s for s in ends_from if _ends_text(s) in ends]))]
    prov_t = tuple((k, v) for k, v in prov if v)
    if not check.kept:
        return Merge(None, check, check.reason, prov_t)
    return Merge(text, check, provenance=prov_t)


def _wordiness(story: Story) -> tuple[int, int]:
    """Most specific first: more need words in its means and ends; the earlier story on a tie."""
    return (-specificity(story.means.text if story.means else "") - specificity(story.ends.text if story.ends else ""), 0)


def merge_proposals(stories: Sequence[Story], same_need: bool | SameNeed = False, limit: int = 3) -> list[Merge]:
    """The first merged story and at most ``limit`` alternatives, each keeping every need of
    ``stories`` (present, or for duplicates said by another source), none repeated.

    The first is the merge that keeps every part in the merged story's own words when there is one;
    for duplicates, otherwise, the most specific source's wording with the other's listed as said.
    Alternatives: the other sources' wordings, and the one with every distinct ends joined."""
    usable = [s for s in stories if s.means is not None]
    if len(usable) < 2:
        return [Merge(None, None, "fewer than two of the stories have a means")]
    found: list[Merge] = []
    joined = _joined(usable)
    if joined.kept:
        found.append(joined)
    duplicates = SameNeed.of(same_need)
    if duplicates:
        for base in sorted(usable, key=_wordiness):
            found.append(_in_words_of(base, usable, duplicates))
            found.append(_in_words_of(base, usable, duplicates, join_ends=True))
    kept, seen = [], set()
    for m in found:
        key = " ".join(re.findall(r"[\w']+", (m.text or "").lower()))
        if m.kept and key not in seen:
            seen.add(key)
            kept.append(m)
    if not kept:
        return [joined]
    return kept[: 1 + max(0, limit)]


def build_merge(stories: Sequence[Story], same_need: bool | SameNeed = False) -> Merge:
    """The first merged story of ``stories`` (see :func:`merge_proposals`), checked with
    :func:`keeps_every_need`; ``text`` None and ``reason`` when none keeps every need."""
    return merge_proposals(stories, same_need)[0]


def merge_cluster(stories: Sequence[Story], same_need: bool | SameNeed = False) -> str | None:
    """The merged story text, or None when fewer than two stories have a means or no single story
    keeps every need of them (see :func:`build_merge` for the reason)."""
    return build_merge(stories, same_need).text

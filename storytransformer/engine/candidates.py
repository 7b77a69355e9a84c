"""Deterministic candidate proposals, built only from the parts of the source stories.

The small default model is weak at writing stories but good enough at telling a fluent one
from a clumsy one, so these candidates are what it ranks. Each candidate records which source
story each of its parts came from (its provenance).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from ..findings import Finding, TextEdit
from ..fixes import complete_actions
from ..markers import lead_role, means_with_subject, repeated_ends_marker, trailing_ends
from ..nlp import ACTION_VERBS
from ..story import Part, Position, Range, Story

MAX_CANDIDATES = 24
CONJUNCTION = re.compile(r"\s*(?:,\s*(?:and|or)\s+|\s+and/or\s+|\s+and\s+|\s+or\s+|\s*&\s*|,\s+)", re.IGNORECASE)

if TYPE_CHECKING:
    from ..similarity.needs import SameNeed


@dataclass(frozen=True)
class Candidate:
    stories: tuple[str, ...]
    provenance: dict[str, str] = field(default_factory=dict)
    origin: str = "template"  # template | fix | generated


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def clean_part(text: str) -> str:
    return squash(text).strip(" ,;:.").strip()


def without_repeated_marker(ends: str) -> str:
    """The ends without the marker written a second time at its start (the ends of "so that, so that we
    can see" is "so that we can see": "we can see" here)."""
    m = repeated_ends_marker(ends)
    return ends[m.end():] if m else ends


# Findings whose text is detail to move out of the story (an aside, a bracket): a rewrite may leave it out.
DETAIL_CODES = frozenset({"ST301", "ST304"})
# Asides that only append examples: the sentence before them is whole ("answer questions about the story
# such as ..."). Not "things like", a colon or a dash, which may carry the object ("to see things like ...").
APPENDED_ASIDE = re.compile(r"(?i)^(?:such\s+as|e\.\s?g\.|for\s+example|for\s+instance|i\.\s?e\.|namely|especially|including)\b")


def detail_spans(part: Part, findings: Sequence[Finding], story_id: str) -> list[tuple[int, int]]:
    """(start, end) in ``part.text`` of each detail finding of the story that lies inside ``part``
    (an ST304 aside runs to the end of the part: what follows "such as" is the detail)."""
    r = part.range
    if r.start.line != r.end.line:
        return []
    out = []
    for f in findings:
        fr = f.range
        appended = f.code != "ST304" or APPENDED_ASIDE.match(str((f.data or {}).get("term", "")))
        if (f.code in DETAIL_CODES and f.story_id == story_id and fr.start.line == fr.end.line == r.start.line
                and r.start.character <= fr.start.character and fr.end.character <= r.end.character and appended):
            start = fr.start.character - r.start.character
            out.append((start, len(part.text) if f.code == "ST304" else fr.end.character - r.start.character))
    return out


def without_detail(part: Part, findings: Sequence[Finding], story_id: str) -> str | None:
    """``part``'s text without the asides and brackets its findings mark (None when it has none)."""
    spans = detail_spans(part, findings, story_id)
    if not spans:
        return None
    text = part.text
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + text[end:]
    return re.sub(r"\s+", " ", text).strip(" ,;:")


def compose(role: Part | None, role_text: str, means: Part, means_text: str, ends: Part | None, ends_text: str | None) -> str:
    """One story sentence from parts, each with the marker it was written with."""
    r = f"{lead_role(role.marker if role else 'As a', role_text)} {role_text}, " if role_text else ""
    m_marker = means_with_subject(means.marker)
    if not r:
        m_marker = m_marker[:1].upper() + m_marker[1:]
    text = f"{r}{m_marker} {means_text}"
    if ends_text:
        text += f", {trailing_ends(ends.marker if ends else '')} {ends_text}"
    return text + "."


def _unique(options: list[tuple[str, Story]]) -> list[tuple[str, Story]]:
    seen: dict[str, tuple[str, Story]] = {}
    for text, story in options:
        key = squash(text).lower()
        if key and key not in seen:
            seen[key] = (text, story)
    return list(seen.values())


def merge_candidates(stories: Sequence[Story], limit: int = MAX_CANDIDATES, same_need: bool | SameNeed = False) -> list[Candidate]:
    """The first merged story and at most three alternatives, each keeping every need of the sources
    (:func:`storytransformer.similarity.merge.merge_proposals`; for duplicates, ``same_need``, one
    source's wording of a part may stand for the other's). Provenance names the source of each part."""
    from ..similarity.merge import merge_proposals

    found = [Candidate((m.text,), dict(m.provenance)) for m in merge_proposals(stories, same_need) if m.kept]
    # then each source's means with every role and every distinct ends: when no merge keeps every
    # need, the validator's verdict on these says which need (and whose) one story would lose
    return _dedupe(found + _recombinations(stories))[: max(1, limit)]


def split_merges(merges: Sequence[tuple[Candidate, Story, Sequence[Finding]]]) -> list[Candidate]:
    """Each merged story whose means joins several actions (the candidate, the story it reads as and its
    findings), as one story per action: the core's atomic fix first, then the conjuncts. Where the
    sources themselves bundle the actions ("view and update the inventory", twice), no single merged
    story is atomic; the proposer then offers the merge split (the validator still checks each line,
    and that together they keep every need). A split that leaves an action without its object
    ("view", "update the inventory") is not offered."""
    from ..formats import read_source

    out: list[Candidate] = []
    for merge, story, findings in merges:
        for split in split_candidates(story, findings):
            parts = read_source("split.txt", "\n".join(split.stories) + "\n").stories
            if len(parts) < 2 or any(p.means is None or len(p.means.text.split()) < 2 for p in parts):
                continue
            out.append(Candidate(split.stories, {f"{i + 1}.{part}": ids for i in range(len(split.stories))
                                                 for part, ids in merge.provenance.items()}, merge.origin))
    return out


def _recombinations(stories: Sequence[Story]) -> list[Candidate]:
    """Each distinct means of the sources with every role and every distinct ends joined."""
    from ..similarity.merge import _widest, join_words

    usable = [s for s in stories if s.means is not None]
    if len(usable) < 2:
        return []
    with_role = [s for s in usable if s.role]
    roles = _widest([clean_part(s.role.text) for s in with_role])
    role_from = [_first_with(with_role, "role", r) for r in roles]
    with_ends = [s for s in usable if s.ends]
    ends = _widest([clean_part(s.ends.text) for s in with_ends])
    ends_from = [_first_with(with_ends, "ends", e) for e in ends]
    role_text = join_words(roles, "or") if roles else ""
    ends_text = " and ".join(ends) if ends else None
    shared: dict[str, str] = {}
    if role_from:
        shared["role"] = "+".join(s.id for s in role_from)
    if ends_from:
        shared["ends"] = "+".join(s.id for s in ends_from)
    return [Candidate((compose(role_from[0].role if role_from else None, role_text, ms.means, m,
                               ends_from[0].ends if ends_from else None, ends_text),), {**shared, "means": ms.id})
            for m, ms in _unique([(clean_part(s.means.text), s) for s in usable])]


def _first_with(stories: Sequence[Story], kind: str, text: str) -> Story:
    return next(s for s in stories if clean_part(getattr(s, kind).text).lower() == text.lower())


# Verbs that are no action of the system but a second wish or a clause of its own ("enable customers to
# give feedback and need an easy way to read it"): a piece that starts with one is not a means to split
# off, and never gets the first piece's verb ("enable need an easy way").
NOT_SPLIT_VERBS = frozenset("need needs want wants wish wishes would like likes should must can could will may "
                            "might shall".split())
# Verbs outside the action list that still lead a piece of their own (it gets no shared verb).
OWN_VERBS = NOT_SPLIT_VERBS | frozenset("have has be know make use allow let require get see".split())


def conjuncts(means: str) -> list[list[str]]:
    """Ways to split a means at its conjunctions: plain conjuncts, and with a shared verb or object
    distributed ("add and remove items" -> "add items", "remove items"). None where a later piece is a
    second wish or a clause ("... and need an easy way to ...", "... and it should ...")."""
    pieces = [p for p in CONJUNCTION.split(means) if p.strip()]
    if len(pieces) < 2 or any(p.split()[0].lower() in NOT_SPLIT_VERBS for p in pieces[1:]):
        return []
    variants = [pieces]
    first_words = pieces[0].split()
    last_words = pieces[-1].split()
    # shared object: every piece but the last is a lone word ("add and remove items")
    if all(len(p.split()) == 1 for p in pieces[:-1]) and len(last_words) > 1:
        tail = " ".join(last_words[1:])
        variants.append([f"{p} {tail}" for p in pieces[:-1]] + [pieces[-1]])
    # shared verb: later pieces lack the first one's verb ("create users and groups"); a piece that leads
    # with a verb of its own ("search the catalogue and reserve a book") has one already
    if len(first_words) > 1 and not any(p.split()[0].lower() in ACTION_VERBS | OWN_VERBS for p in pieces[1:]):
        verb = first_words[0]
        variants.append([pieces[0]] + [f"{verb} {p}" for p in pieces[1:]])
    return variants


def split_candidates(story: Story, findings: Sequence[Finding] = (), limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """A story per conjunct of the means; and the split from the core's atomic fix, when it has one."""
    out: list[Candidate] = []
    for f in findings:
        if f.fix and f.code.startswith("ST2"):
            lines = fix_result(story, f.fix.edits)
            if lines and len(lines) >= 2:
                out.append(Candidate(tuple(lines), {f"{i + 1}.means": story.id for i in range(len(lines))}, "fix"))
    if story.means is None:
        return _dedupe(out)
    end_text = clean_part(story.ends.text) if story.ends else None
    role_text = clean_part(story.role.text) if story.role else ""
    for variant in conjuncts(clean_part(story.means.text)):
        whole = complete_actions(tuple(variant))  # each a verb with its object, as the atomic fix's split
        if whole is None:
            continue
        lines = tuple(compose(story.role, role_text, story.means, clean_part(m), story.ends, end_text) for m in whole)
        out.append(Candidate(lines, {f"{i + 1}.means": story.id for i in range(len(lines))}))
        if len(out) >= limit:
            break
    return _dedupe(out)


def rewrite_candidates(story: Story, findings: Sequence[Finding] = (), limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """The story refilled from its own parts (markers normalised, extra text dropped), and the
    story with each of the core's fixes for it applied."""
    out: list[Candidate] = []
    from ..edits import choose_fixes

    fixes = choose_fixes(f.fix for f in findings if f.fix and f.story_id == story.id)
    if len(fixes) > 1:
        lines = fix_result(story, [e for fx in fixes for e in fx.edits])
        if lines:
            out.append(Candidate(tuple(lines), {"story": story.id, "fix": "+".join(fx.title for fx in fixes)}, "fix"))
    for f in findings:
        if f.fix and f.story_id == story.id:
            lines = fix_result(story, f.fix.edits)
            if lines:
                out.append(Candidate(tuple(lines), {"story": story.id, "fix": f.code}, "fix"))
    if story.means is not None:
        role_text = clean_part(story.role.text) if story.role else ""
        means_text = clean_part(story.means.text)
        prov = {"means": story.id, **({"role": story.id} if story.role else {})}
        if story.ends:
            ends_text = without_repeated_marker(story.ends.text)
            out.append(Candidate((compose(story.role, role_text, story.means, means_text, story.ends,
                                          clean_part(ends_text)),), {**prov, "ends": story.id}))
            cut = without_detail(story.ends, findings, story.id)
            if cut is not None:
                out.append(Candidate((compose(story.role, role_text, story.means, means_text, story.ends,
                                              clean_part(without_repeated_marker(cut))),), {**prov, "ends": story.id}))
        out.append(Candidate((compose(story.role, role_text, story.means, means_text, None, None),), prov))
    return _dedupe(out)[:limit]


def fixed_words(story: Story, findings: Sequence[Finding]) -> tuple[tuple[str, str], ...]:
    """(code, words) for each finding of ``story`` whose quick fix rewrites the story in place and takes
    those words out of it altogether: a rewrite that still has them ("I'd like to" where the backlog says
    "I want") has not fixed what the finding asks for, although one-story rules cannot see it (ST501
    compares the story with its backlog). Words the fix only shortens ("so that so that") do not count."""
    out = []
    line, col0 = story.range.start.line, story.range.start.character
    for f in findings:
        if f.story_id != story.id or f.fix is None:
            continue
        fixed = fix_result(story, f.fix.edits)
        if len(fixed) != 1:
            continue
        for e in f.fix.edits:
            if e.range.start.line == e.range.end.line == line:
                words = story.text[e.range.start.character - col0:e.range.end.character - col0].strip(" ,.;")
                if len(words) >= 2 and words not in fixed[0]:
                    out.append((f.code, words))
    return tuple(out)


def fix_result(story: Story, edits: Sequence[TextEdit]) -> list[str]:
    """The story lines that a fix's edits produce (notes and comments it adds are left out)."""
    line, col0 = story.range.start.line, story.range.start.character
    if story.range.end.line != line or "\n" in story.text:
        return []
    from ..edits import apply_edits

    local = []
    for e in edits:
        if e.range.start.line != line or e.range.end.line != line:
            return []
        s = max(0, e.range.start.character - col0)
        t = max(s, min(len(story.text), e.range.end.character - col0))
        local.append(TextEdit(Range(Position(0, s), Position(0, t)), e.new_text))
    try:
        text = apply_edits(story.text, local)
    except ValueError:
        return []
    from ..formats.base import split_explicit_id

    lines = [squash(x) for x in text.splitlines() if x.strip() and not re.match(r"\s*(#|//|<!--|- Note)", x)]
    return [x[split_explicit_id(x)[1]:] for x in lines]  # a split's new ids (US-3a) are not story text


def _dedupe(cands: list[Candidate]) -> list[Candidate]:
    seen: set[tuple[str, ...]] = set()
    out = []
    for c in cands:
        key = tuple(squash(s).lower() for s in c.stories)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out

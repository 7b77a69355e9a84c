"""A cheap heuristic for contradicting stories: same role, same object, and one of them negated
or using the antonym of the other's verb ("enable"/"disable", "show"/"hide").

What it can detect: direct negation ("I want to ..." vs "I do not want to ..."), the antonym
pairs below, about the same object for the same (or an unnamed) role. What it cannot: conflicts
that need world knowledge ("export as PDF" vs "only plain text leaves the system"), conflicts
across different wording of the object, or quantitative ones ("within 1 s" vs "nightly batch").
The model's yes/no probability is reported beside it as a weak second opinion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..story import Story
from .grounding import content_words, stem

NEGATION = re.compile(r"\b(?:not|never|no|cannot|can't|don't|doesn't|won't|shouldn't|mustn't|without|nobody|none)\b",
                      re.IGNORECASE)
ANTONYMS = [
    ("enable", "disable"), ("allow", "deny"), ("allow", "forbid"), ("allow", "prevent"), ("allow", "block"),
    ("show", "hide"), ("display", "hide"), ("add", "remove"), ("include", "exclude"), ("lock", "unlock"),
    ("permit", "prohibit"), ("public", "private"), ("always", "never"), ("increase", "decrease"),
    ("open", "close"), ("grant", "revoke"), ("accept", "reject"), ("mandatory", "optional"),
    ("required", "optional"), ("publish", "unpublish"), ("subscribe", "unsubscribe"), ("visible", "invisible"),
    ("encrypt", "decrypt"), ("keep", "delete"), ("store", "delete"), ("retain", "delete"), ("share", "hide"),
]
ANTONYM_STEMS = {(stem(a), stem(b)) for a, b in ANTONYMS} | {(stem(b), stem(a)) for a, b in ANTONYMS}
MIN_OBJECT_OVERLAP = 0.5


@dataclass(frozen=True)
class Heuristic:
    conflict: bool
    kind: str
    reason: str


def _means(s: Story) -> str:
    return s.means.text if s.means else s.text


def _negated(s: Story) -> bool:
    marker = s.means.marker if s.means else ""
    return bool(NEGATION.search(marker) or NEGATION.search(_means(s)))


def heuristic(a: Story, b: Story) -> Heuristic:
    ra = a.role.text.lower().strip() if a.role else ""
    rb = b.role.text.lower().strip() if b.role else ""
    if ra and rb and set(content_words(ra)) != set(content_words(rb)):
        return Heuristic(False, "none", "different roles")
    wa, wb = set(content_words(_means(a))), set(content_words(_means(b)))
    antonym = next(((x, y) for x in wa for y in wb if (x, y) in ANTONYM_STEMS), None)
    objects_a = wa - {antonym[0]} if antonym else wa
    objects_b = wb - {antonym[1]} if antonym else wb
    union = objects_a | objects_b
    overlap = len(objects_a & objects_b) / len(union) if union else 0.0
    if overlap < MIN_OBJECT_OVERLAP:
        return Heuristic(False, "none", f"different objects (overlap {overlap:.2f})")
    if _negated(a) != _negated(b):
        return Heuristic(True, "negation", "one story asks for what the other one rules out")
    if antonym:
        return Heuristic(True, "antonym", f"opposite actions on the same object ({antonym[0]}/{antonym[1]})")
    return Heuristic(False, "none", "same object, no negation or opposite action found")

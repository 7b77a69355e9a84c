"""Unambiguous: no vague words ("fast", "user-friendly", "etc.") that nobody can test."""

from __future__ import annotations

from ..findings import Finding, Severity
from ..story import sub_range
from .registry import MAX_STORY_CHARS, Example, rule

CRITERION = "unambiguous"


@rule("ST701", "vague-term", CRITERION, Severity.WARNING,
      "A vague term in the role or means ('fast', 'easy', 'user-friendly', 'etc.'): say what it means.",
      fix="Say what the word means in measurable terms, or accept the word for the project (code action).",
      examples=(Example("As a user, I want fast search.", flagged=True),
                Example("As a user, I want search results within one second.", flagged=False)))
def vague_term(story, ctx):
    for part in (story.role, story.means):
        if part is None:
            continue
        for m in ctx.vague.finditer(part.text, 0, MAX_STORY_CHARS):  # a too-long story: its start (ST902)
            yield Finding.on(story, "ST701", CRITERION, Severity.WARNING,
                             f"Ambiguous: '{m.group(0)}' is vague; say how it can be checked",
                             sub_range(part.text, part.range, m.start(), m.end()), data={"term": m.group(0)})

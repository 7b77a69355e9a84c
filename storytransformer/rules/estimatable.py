"""Estimatable: a story small enough to estimate, not an epic in disguise."""

from __future__ import annotations

import re

from ..findings import Finding, Severity
from .registry import MAX_STORY_CHARS, Example, rule

CRITERION = "estimatable"
# "manage X" asks for everything one can do with X (create, edit, delete, list, ...): annotators mark it as an
# epic whatever X is; "maintain" and "control" only when they cover a whole area ("maintain all ...").
EPIC_VERBS = re.compile(r"^(?:be able to\s+)?(?:(?:manage|administer|administrate|handle)\s+\S"
                        r"|(?:maintain|control)\s+(?:all|every|the whole|everything)\b)", re.I)


@rule("ST901", "epic-sized", CRITERION, Severity.INFO,
      "The story is long or asks for a whole area ('manage all ...'): likely an epic to split.",
      fix="Split the epic into stories that each deliver one thing.",
      examples=(Example("As an admin, I want to manage all users.", flagged=True),
                Example("As an admin, I want to deactivate a user.", flagged=False)))
def epic_sized(story, ctx):
    if story.means is None:
        return
    words = len(story.text.split())
    if words > ctx.config.max_words:
        yield Finding.on(story, "ST901", CRITERION, Severity.INFO,
                         f"Hard to estimate: {words} words (more than {ctx.config.max_words}); is it an epic to split?")
        return
    m = EPIC_VERBS.match(story.means.text)
    if m:
        verb = re.search(r"(?i)manage|administer|administrate|handle|maintain|control", m.group(0)).group(0).lower()
        what = " ".join(story.means.text.split()[:6])
        yield Finding.on(story, "ST901", CRITERION, Severity.INFO,
                         f"Hard to estimate: '{what}' covers a whole area ('{verb}' means creating, changing, "
                         "removing, listing, ...); split it into the concrete actions",
                         story.means.range)


@rule("ST902", "too-long", CRITERION, Severity.WARNING,
      f"The story is longer than {MAX_STORY_CHARS:,} characters: too long to estimate, and only its first "
      f"{MAX_STORY_CHARS:,} characters are checked for conjunctions, brackets and vague terms.",
      fix="Cut the story down to role, means and ends; keep the rest as notes.",
      examples=(Example("As a researcher, I want to read the report, so that I can cite "
                        + "the findings of the annual review " * 70 + "in my paper.", flagged=True),
                Example("As a researcher, I want to read the report, so that I can cite it.", flagged=False)))
def too_long(story, ctx):
    n = len(story.text)
    if n > MAX_STORY_CHARS:
        yield Finding.on(story, "ST902", CRITERION, Severity.WARNING,
                         f"Too long to check fully: {n:,} characters (more than {MAX_STORY_CHARS:,}); only the first "
                         f"{MAX_STORY_CHARS:,} were checked. Split the story or move the details to notes",
                         data={"characters": n, "limit": MAX_STORY_CHARS})

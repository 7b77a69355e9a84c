"""Well-formed: a story names a role and a means ("As a <role>, I want <means>")."""

from __future__ import annotations

from ..findings import Finding, Severity
from .registry import Example, rule

CRITERION = "well-formed"


@rule("ST101", "missing-role", CRITERION, Severity.WARNING, "The story does not say who wants it (no 'As a <role>').",
      fix="Start with who wants it: 'As a <role>, ...'.",
      examples=(Example("I want to export the report.", flagged=True),
                Example("As an accountant, I want to export the report.", flagged=False)))
def missing_role(story, ctx):
    if story.role is None and story.means is not None:
        yield Finding.on(story, "ST101", CRITERION, Severity.WARNING,
                         "No role: start the story with 'As a <role>,' to say who needs this")


@rule("ST102", "missing-means", CRITERION, Severity.WARNING, "The story has a role but no means (no 'I want ...').",
      fix="Say what the role wants after the role: 'I want to <means>'.",
      examples=(Example("As a visitor, the catalogue.", flagged=True),
                Example("As a visitor, I want to search the catalogue.", flagged=False)))
def missing_means(story, ctx):
    if story.role is not None and story.means is None:
        yield Finding.on(story, "ST102", CRITERION, Severity.WARNING,
                         f"No means: after 'As a {story.role.text}', say what they want ('I want to ...')")


@rule("ST103", "not-a-story", CRITERION, Severity.WARNING, "The text has neither a role nor a means: it is not a user story.",
      fix="Rewrite the text as a story, or keep it as a note outside the backlog.",
      examples=(Example("Export bug in reports", flagged=True),
                Example("As an accountant, I want to export reports without errors.", flagged=False)))
def not_a_story(story, ctx):
    if story.role is None and story.means is None:
        hint = " (it starts in lower case: is it the rest of the line above?)" if story.text[:1].islower() else ""
        yield Finding.on(story, "ST103", CRITERION, Severity.WARNING,
                         f"Not a user story: no role and no means{hint}")


@rule("ST104", "missing-ends", CRITERION, Severity.HINT,
      "The story does not say why ('so that <ends>'); optional in QUS, off by default.", default_on=False,
      fix="Add why: ', so that <ends>'.",
      examples=(Example("As a member, I want to renew a loan.", flagged=True),
                Example("As a member, I want to renew a loan, so that I avoid a fine.", flagged=False)))
def missing_ends(story, ctx):
    if story.role is not None and story.means is not None and story.ends is None:
        yield Finding.on(story, "ST104", CRITERION, Severity.HINT,
                         "No ends: add 'so that <benefit>' to say why this is needed", story.means.range)

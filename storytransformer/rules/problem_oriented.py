"""Problem-oriented: a story says what is needed, not how to build it (buttons, colours, technologies)."""

from __future__ import annotations

from ..findings import Finding, Severity
from ..story import sub_range
from .registry import Example, rule

CRITERION = "problem-oriented"


@rule("ST801", "solution-detail", CRITERION, Severity.INFO,
      "The means names a solution (a button, a colour, a technology) instead of the need.",
      fix="State the need, not the widget or technology that meets it.",
      examples=(Example("As a user, I want a red button to delete my account.", flagged=True),
                Example("As a user, I want to delete my account.", flagged=False)))
def solution_detail(story, ctx):
    if story.means is None:
        return
    m = ctx.solution.search(story.means.text)
    if m:
        yield Finding.on(story, "ST801", CRITERION, Severity.INFO,
                         f"Not problem-oriented: '{m.group(0)}' is solution detail; state the need and leave the design open",
                         sub_range(story.means.text, story.means.range, m.start(), m.end()), data={"term": m.group(0)})

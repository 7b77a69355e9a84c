"""Conceptually sound: the means names a feature and the ends a reason, each in its own slot.

A means that only asks for reassurance ("I want to be assured that ...", "I want to ensure that ...")
states a goal, not something to build: the feature that would give the assurance is missing. The
rule is off by default: annotators mark only some such stories (docs/benchmarks/rules.md gives its
precision); a capable language model is needed for the rest of the criterion.
"""

from __future__ import annotations

import re

from ..findings import Finding, Severity
from ..story import sub_range
from .registry import MODEL_SCOPE, Example, declare, rule

CRITERION = "conceptually-sound"
GOAL_MEANS = re.compile(r"(?i)^\s*(?:to\s+)?(?:be\s+able\s+to\s+)?(?:be\s+(?:re)?assured|have\s+(?:a\s+)?guarantees?|"
                        r"ensure|make\s+sure|be\s+sure)\b")


@rule("ST1001", "goal-as-means", CRITERION, Severity.INFO,
      "The means asks for an assurance ('I want to be assured that ...', 'I want to ensure ...'): a goal, not a "
      "feature. Off by default.", default_on=False,
      fix="Say which feature gives the assurance ('I want to see a checksum report ...') and move the goal to the ends.",
      examples=(Example("As an asset manager, I want to be assured that every copy is monitored for changes.", flagged=True),
                Example("As an asset manager, I want to receive a report of copies that changed, so that I can trust "
                        "the archive.", flagged=False)))
def goal_as_means(story, ctx):
    if story.means is None:
        return
    m = GOAL_MEANS.match(story.means.text)
    if m:
        yield Finding.on(story, "ST1001", CRITERION, Severity.INFO,
                         f"Not conceptually sound: '{m.group(0).strip()} ...' states a goal, not a feature; say what "
                         "the system does that gives it, and put the goal in the ends",
                         sub_range(story.means.text, story.means.range, m.start(), m.end()))


# The rest of the criterion: an ends that is another feature or a requirement, not a reason. Its
# wording varies too much for a pattern (of 33 labelled stories of the tuning split, ST1001 finds 8; an ends
# that repeats the means' verb, "review plans, so that I can review them", flags 14 stories, 3 labelled; an
# ends whose subject is "it" or "they" 20, 2 labelled).
declare("ST1002", "ends-not-a-reason", CRITERION, Severity.INFO,
        "The ends is another feature or a requirement, not a reason ('so that I can also export it to PDF'), or the "
        "parts are in the wrong slots. Needs a language model: "
        "`check --model-checks`, `report --model-checks` and the editor's Run Model Checks run it.",
        scope=MODEL_SCOPE, default_on=False,
        fix="Move the feature into a story of its own and give the reason the user wants this one.",
        examples=(Example("As a moderator, I want to export a game, so that I can also print the estimates as PDF.",
                          flagged=True),
                  Example("As a moderator, I want to export a game, so that I can keep the estimates.", flagged=False)))

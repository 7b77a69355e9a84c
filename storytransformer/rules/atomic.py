"""Atomic: a story asks for one feature. "I want to add and edit articles" asks for two."""

from __future__ import annotations

from ..findings import Finding, Severity
from ..fixes import complete_actions, split_story
from ..nlp import MAX_ACTIONS
from ..story import sub_range
from .full_sentence import RUN_ON_WORDS
from .registry import MAX_STORY_CHARS, PREPARE, Example, rule

CRITERION = "atomic"


@rule("ST201", "conjoined-actions", CRITERION, Severity.WARNING,
      "The means joins two or more actions with and / or / & / slash: split the story.", fixable=True, unsafe_fix=True,
      fix="Split the story: one action per story. The quick fix does it when every new story comes out whole "
          "(a role, a verb with its object, no word left dangling); a story that runs on (ST405) is split by hand.",
      examples=(Example("As a user, I want to add and delete tags.", flagged=True),
                Example("As a user, I want to add tags.", flagged=False)))
def conjoined_actions(story, ctx):
    if story.means is None:
        return
    conj = ctx.conjunctions.analyse(story.means.marker, story.means.text)
    if conj is None:
        return
    rng = sub_range(story.means.text, story.means.range, conj.start, conj.end)
    # the actions as the split writes them when they can be made whole ("add members to the club"), else as
    # the means has them
    actions = complete_actions(conj.parts)
    shown = actions or conj.parts
    listed = " / ".join(f"'{p}'" for p in shown)
    # A story checked only in part (ST902), with more actions than the analysis lists, or that runs on
    # (ST405: a split would copy its run-on clauses into every new story) is split by hand.
    whole = (len(story.text) <= MAX_STORY_CHARS and len(conj.parts) < MAX_ACTIONS
             and len(story.text.split()) <= RUN_ON_WORDS)
    fix = split_story(story, actions, ctx.lines_of(story)) if whole else None
    count = f"{len(conj.parts)}" if len(conj.parts) < MAX_ACTIONS else f"at least {len(conj.parts)}"
    yield Finding.on(story, "ST201", CRITERION, Severity.WARNING,
                     f"Not atomic: the means joins {count} actions ({listed}); write one story each",
                     rng, fix=fix, data={"parts": list(shown)})


def prepare(stories, ctx) -> None:
    """Parse every conjunction of the run in one batch before the per-story checks."""
    ctx.conjunctions.prepare((s.means.marker, s.means.text) for s in stories if s.means is not None)


PREPARE["ST201"] = prepare

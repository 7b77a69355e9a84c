"""Atomic: a story asks for one feature. "I want to add and edit articles" asks for two."""

from __future__ import annotations

from ..findings import Finding, Severity
from ..fixes import split_story
from ..story import sub_range
from . import PREPARE, rule

CRITERION = "atomic"


@rule("ST201", "conjoined-actions", CRITERION, Severity.WARNING,
      "The means joins two or more actions with and / or / & / slash: split the story.", fixable=True, unsafe_fix=True)
def conjoined_actions(story, ctx):
    if story.means is None:
        return
    conj = ctx.conjunctions.analyse(story.means.marker, story.means.text)
    if conj is None:
        return
    rng = sub_range(story.means.text, story.means.range, conj.start, conj.end)
    actions = " / ".join(f"'{p}'" for p in conj.parts)
    fix = split_story(story, conj.parts, ctx.lines_of(story))
    yield Finding.on(story, "ST201", CRITERION, Severity.WARNING,
                     f"Not atomic: the means joins {len(conj.parts)} actions ({actions}); write one story each",
                     rng, fix=fix, data={"parts": list(conj.parts)})


def prepare(stories, ctx) -> None:
    """Parse every conjunction of the run in one batch before the per-story checks."""
    ctx.conjunctions.prepare((s.means.marker, s.means.text) for s in stories if s.means is not None)


PREPARE["ST201"] = prepare

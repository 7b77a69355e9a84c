"""Uniform: the stories of a backlog follow one template, the one most of them use."""

from __future__ import annotations

from ..findings import Finding, Severity
from ..fixes import normalise_markers
from .context import means_family, role_family
from . import rule

CRITERION = "uniform"
MIN_STORIES = 5  # below this a backlog has no dominant template to deviate from
MIN_SHARE = 0.6


@rule("ST501", "template-deviation", CRITERION, Severity.INFO,
      "The story's markers differ from the backlog's dominant template ('I'd like' where most say 'I want').",
      fixable=True, scope="workspace")
def template_deviation(story, ctx, workspace):
    t = ctx.template
    if t.counted < MIN_STORIES or story.means is None:
        return
    problems = []
    role_dev = story.role is not None and t.role_share >= MIN_SHARE and t.role == "as a" \
        and role_family(story.role.marker) == "as"
    if role_dev:
        problems.append(f"'{story.role.marker} {story.role.text}' lacks the article of '{t.role.capitalize()} ...'")
    fam = means_family(story.means.marker)
    means_dev = t.means_share >= MIN_SHARE and fam != t.means and fam != "i don't want"
    if means_dev:
        problems.append(f"'{story.means.marker}' where {t.means_share:.0%} of the stories say '{t.means.replace('i ', 'I ', 1)}'")
    if not problems:
        return
    rng = story.means.marker_range if means_dev and not role_dev else story.range
    if role_dev and not means_dev:
        rng = story.role.marker_range
    fix = normalise_markers(story, t.role if role_dev else "", t.means if means_dev else "")
    yield Finding.on(story, "ST501", CRITERION, Severity.INFO,
                     "Not uniform: " + "; ".join(problems), rng, fix=fix)

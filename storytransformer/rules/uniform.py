"""Uniform: the stories of a backlog follow one template, the one most of them use."""

from __future__ import annotations

import re

from ..findings import Finding, Fix, Severity, TextEdit
from ..fixes import ends_first, normalise_markers, role_first
from ..story import sub_range
from .context import means_family, role_family
from .registry import Example, rule

CRITERION = "uniform"
MIN_STORIES = 5  # below this a backlog has no dominant template to deviate from
MIN_SHARE = 0.6
BECAUSE = re.compile(r"(?i),?\s+because\s+(?:I|we|it|that|the|my|our|they)\b")


# Five stories in the backlog's dominant template ("I want"), then the story the example is about.
_BACKLOG = ("As a member, I want to renew a loan, so that I avoid a fine.\n"
            "As a member, I want to reserve a book, so that I can borrow it next.\n"
            "As a librarian, I want to add titles, so that members find new books.\n"
            "As a visitor, I want to search the catalogue, so that I can find a book.\n"
            "As a member, I want to see my loans, so that I know what is due.\n")


@rule("ST501", "template-deviation", CRITERION, Severity.INFO,
      "The story's markers differ from the backlog's dominant template ('I'd like' where most say 'I want'), or the "
      "line does not use it at all (no role, or not a story: a heading, a fragment) where most stories do.",
      fixable=True, scope="workspace",
      fix="Use the backlog's dominant markers (the quick fix rewrites them).",
      examples=(Example(_BACKLOG + "As a member, I'd like to pay a fine online, so that I can borrow again.", flagged=True),
                Example(_BACKLOG + "I want to pay a fine online, so that I can borrow again.", flagged=True),
                Example(_BACKLOG + "Fines and payments", flagged=True),
                Example(_BACKLOG + "In order to borrow again, as a member, I want to pay a fine online.", flagged=True),
                Example(_BACKLOG + "As a member, I want to pay a fine online, so that I can borrow again.", flagged=False)))
def template_deviation(story, ctx, workspace):
    t = ctx.template
    if t.counted < MIN_STORIES:
        return
    if story.means is None or story.role is None:
        yield from _outside_template(story, t)
        return
    if ends_first(story) and t.role_share >= MIN_SHARE:
        yield Finding.on(story, "ST501", CRITERION, Severity.INFO,
                         f"Not uniform: the reason comes first ('{story.ends.marker} ...') where {t.role_share:.0%} of "
                         f"the stories start '{t.role.capitalize()} ...'", fix=role_first(story, t.role))
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
    because = story.ends is None and BECAUSE.search(story.means.text)
    if because:
        problems.append("'because' gives the reason where the backlog's stories say 'so that'")
    if not means_dev and not because:
        return  # a role without its article alone is a nit, not another template (docs/labelling.md)
    rng = story.means.marker_range if means_dev and not role_dev else story.range
    fix = normalise_markers(story, t.role if role_dev else "", t.means) if means_dev else None
    yield Finding.on(story, "ST501", CRITERION, Severity.INFO,
                     "Not uniform: " + "; ".join(problems), rng, fix=fix)


def _outside_template(story, t):
    """A line that does not use the template at all where most stories of its backlog do: no role ('I want
    ...' where the others say 'As a ...', docs/labelling.md), or no story shape (a heading, a fragment)."""
    template = f"'{t.role.capitalize()} ..., {t.means.replace('i ', 'I ', 1)} ...'"
    if story.means is not None:
        share = t.counted / t.with_means
        if share >= MIN_SHARE:
            yield Finding.on(story, "ST501", CRITERION, Severity.INFO,
                             f"Not uniform: no role where {share:.0%} of the stories start {template}")
        return
    share = t.counted / t.lines
    if share >= MIN_SHARE:
        yield Finding.on(story, "ST501", CRITERION, Severity.INFO,
                         f"Not uniform: the line does not follow the template {template} that {share:.0%} of the "
                         "stories use")


def _gap(story, left, right):
    """Offsets in the story text between the end of part ``left`` and the start of marker ``right``."""
    base = story.range.start.character
    return left.range.end.character - base, right.marker_range.start.character - base


# Off by default: a missing comma is house style, not another template (annotators do not count it
# as a uniform defect; docs/benchmarks/rules.md). Turn it on with `select`.
@rule("ST502", "marker-punctuation", CRITERION, Severity.INFO,
      "A comma is missing (or misplaced) between the parts: 'As a user, I want ..., so that ...'.",
      fixable=True, default_on=False,
      fix="Put a comma between the parts (the quick fix adds them).",
      examples=(Example("As a user I want to log in so that I see my loans.", flagged=True),
                Example("As a user, I want to log in, so that I see my loans.", flagged=False)))
def marker_punctuation(story, ctx):
    if story.range.start.line != story.range.end.line or story.means is None:
        return
    pairs = []
    if story.role is not None:
        pairs.append((story.role, story.means))
    if story.ends is not None and story.ends.marker.lower() != "in order to":
        pairs.append((story.means, story.ends))
    edits = []
    for left, right in pairs:
        s, e = _gap(story, left, right)
        gap = story.text[s:e]
        if gap != ", " and gap.strip() in ("", ","):
            edits.append(TextEdit(sub_range(story.text, story.range, s, e), ", "))
    if edits:
        words = "a comma between the parts" if len(edits) > 1 else "the comma before '" + (
            story.means.marker if edits[0].range.end.character == story.means.marker_range.start.character
            else story.ends.marker) + "'"
        yield Finding.on(story, "ST502", CRITERION, Severity.INFO, f"Not uniform: write {words} as in 'As a user, I want ..., so that ...'",
                         edits[0].range, fix=Fix("Punctuate the story's parts", tuple(edits)))

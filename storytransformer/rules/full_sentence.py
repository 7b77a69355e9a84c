"""Full sentence: a story is one well-formed sentence, not a fragment or a broken line."""

from __future__ import annotations

import re

from ..findings import Finding, Fix, Severity, TextEdit
from ..fixes import join_sentences
from ..story import Range, sub_range
from .registry import Example, rule

CRITERION = "full-sentence"


@rule("ST401", "sentence-fragment", CRITERION, Severity.WARNING,
      "The text starts in lower case: a fragment, often the rest of a line broken in two.",
      fix="Join the fragment to the line it belongs to, or start the story with a capital.",
      examples=(Example("so that I can find a book.", flagged=True),
                Example("As a visitor, I want to search, so that I can find a book.", flagged=False)))
def sentence_fragment(story, ctx):
    first = story.text.lstrip()[:1]
    if first.isalpha() and first.islower() and story.role is None:
        yield Finding.on(story, "ST401", CRITERION, Severity.WARNING,
                         "Not a full sentence: it starts in lower case (the rest of a story broken over two lines?)")


@rule("ST402", "split-sentence", CRITERION, Severity.WARNING,
      "A full stop splits the story before its ends ('... status. So that I can ...').", fixable=True,
      fix="Join the sentences: '..., so that ...' (the quick fix does it).",
      examples=(Example("As a user, I want to see my status. So that I can plan.", flagged=True),
                Example("As a user, I want to see my status, so that I can plan.", flagged=False)))
def split_sentence(story, ctx):
    ends = story.ends
    if ends is None or ends.range.start.line != story.range.start.line:
        return
    marker_at = ends.marker_range.start.character - story.range.start.character
    before = story.text[:marker_at]
    m = re.search(r"\s*[.;!]\s*$", before)
    if m:
        yield Finding.on(story, "ST402", CRITERION, Severity.WARNING,
                         f"Not a full sentence: a full stop splits the story before '{ends.marker}'",
                         sub_range(story.text, story.range, m.start(), marker_at + len(ends.marker)),
                         fix=_join_fix(story, m.start(), marker_at))


def _join_fix(story, gap_start, marker_at):
    fix = join_sentences(story, gap_start, marker_at)
    if fix is None:
        return None
    edit = fix.edits[0]
    lowered = story.text[marker_at:marker_at + 1].lower()
    first = sub_range(story.text, story.range, marker_at, marker_at + 1)
    return Fix(fix.title, (edit, TextEdit(first, lowered)))


@rule("ST403", "missing-final-punctuation", CRITERION, Severity.HINT,
      "The story does not end with a full stop (off by default: many backlogs omit it).", default_on=False, fixable=True,
      fix="End the story with a full stop (the quick fix adds it).",
      examples=(Example("As a user, I want to log in", flagged=True),
                Example("As a user, I want to log in.", flagged=False)))
def missing_final_punctuation(story, ctx):
    if story.means is not None and story.text.rstrip()[-1:] not in ".!?)\"'”":
        end = story.range.end
        yield Finding.on(story, "ST403", CRITERION, Severity.HINT, "The story does not end with a full stop",
                         Range(end, end), fix=Fix.replace("Add a full stop", Range(end, end), "."))

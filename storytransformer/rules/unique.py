"""Unique: every story appears once in the whole workspace (exact and normalised duplicates).

Semantic duplicates (same meaning, other words) come from the similarity index (ST603), and, with
``check --model-checks``, from the language model asked about the index's near pairs (ST606).
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..findings import Finding, Related, Severity
from ..fixes import delete_story
from ..places import story_place
from .registry import MODEL_SCOPE, Example, FixKind, declare, rule

CRITERION = "unique"


MAX_RELATED = 10  # a story copied 50 times lists 10 copies, not 49


@lru_cache(maxsize=65536)
def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(".")


def _position(s):
    return (s.file, s.range.start.line, s.range.start.character)


@rule("ST601", "exact-duplicate", CRITERION, Severity.WARNING,
      "The same story is written twice in the workspace.", fix_kind=FixKind.DELETION, scope="workspace",
      merge_candidate=True,
      fix="Delete one of the two (the quick fix deletes the later one), or merge them.",
      examples=(Example("As a member, I want to renew a loan.\nAs a member, I want to renew a loan.", flagged=True),
                Example("As a member, I want to renew a loan.\nAs a member, I want to return a loan.", flagged=False)))
def exact_duplicate(story, ctx, workspace):
    same = [s for s in workspace.same_text(story) if _squash(s.text) == _squash(story.text)]
    if not same:
        return
    yield _finding(story, same, "ST601", "Duplicate: the same story", ctx, "delete one of them")


@rule("ST602", "near-duplicate", CRITERION, Severity.WARNING,
      "The story differs from another only in case, punctuation or spacing.", scope="workspace", merge_candidate=True,
      fix="Delete one, or merge them into one story.",
      examples=(Example("As a user, I want to log in.\nAs a user, I want to LOG IN!", flagged=True),
                Example("As a user, I want to log in.\nAs a user, I want to log out.", flagged=False)))
def normalised_duplicate(story, ctx, workspace):
    others = workspace.same_text(story)
    if not others or all(_squash(s.text) == _squash(story.text) for s in others):
        return
    near = [s for s in others if _squash(s.text) != _squash(story.text)]
    yield _finding(story, near, "ST602", "Duplicate: the same words", ctx, "keep one of them (or merge them)",
                   deletable=False)


declare("ST606", "restated-duplicate", CRITERION, Severity.WARNING,
        "Another story asks for the same functionality in other words, though the embedding index did not call the "
        "two duplicates. Needs a language model: "
        "`check --model-checks`, `report --model-checks` and the editor's Run Model Checks run it, as the second "
        "judge of each story's nearest neighbours.",
        scope=MODEL_SCOPE, default_on=False, merge_candidate=True,
        fix="Merge the two stories into one, or delete one of them.",
        examples=(Example("As a member, I want to extend the loan period of a borrowed book online.\n"
                          "As a library user, I want to renew my loans from home.", flagged=True),
                  Example("As a member, I want to extend the loan period of a borrowed book online.\n"
                          "As a member, I want to reserve a book that is on loan.", flagged=False)))


def _finding(story, others, code, what, ctx, how, deletable=True):
    others = sorted(others, key=_position)
    first = min([story, *others], key=_position)
    more = f" and {len(others) - 3} more" if len(others) > 3 else ""
    listed = others[:MAX_RELATED]
    places = [story_place(o, ctx.config.root) for o in listed]  # file:line relative to the workspace, once each
    where = ", ".join(places[:3]) + more
    related = tuple(Related(o.file, o.range, o.id, f"{what} ({at})") for o, at in zip(listed, places))
    fix = delete_story(story, ctx.lines_of(story)) if deletable and story is not first else None
    return Finding.on(story, code, CRITERION, Severity.WARNING, f"{what} as {where}; {how}", related=related, fix=fix)

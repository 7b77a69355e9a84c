"""Complete: the backlog does not miss a step that one of its stories relies on.

A model check: whether "edit my saved searches" has a story that lets anyone save a search, or
whether a missing delete is a gap or a choice, depends on what the stories mean, not on their words;
a capable language model is needed, so only ``check --model-checks`` asks one
(:mod:`storytransformer.engine.judge`).
"""

from __future__ import annotations

from ..findings import Severity
from .registry import MODEL_SCOPE, Example, declare

CRITERION = "complete"

declare("ST1301", "missing-step", CRITERION, Severity.INFO,
        "The story relies on an action or object that no story of the backlog provides ('edit my saved searches' "
        "where no story saves one). Needs a language model: "
        "`check --model-checks`, `report --model-checks` and the editor's Run Model Checks run it.",
        scope=MODEL_SCOPE, default_on=False,
        fix="Add the story for the missing step, or say in this story where the object comes from.",
        examples=(Example("As a visitor, I want to search the catalogue by title.\n"
                          "As a visitor, I want to edit my saved searches.", flagged=True),
                  Example("As a visitor, I want to save a search of the catalogue.\n"
                          "As a visitor, I want to edit my saved searches.", flagged=False)))

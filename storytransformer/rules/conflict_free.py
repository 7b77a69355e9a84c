"""Conflict-free: no two stories of a backlog contradict each other.

A model check: telling a contradiction from two stories that merely share a role and an object
needs a capable language model. The word-level heuristic of the engine (an opposite verb such as
enable/disable, or one story negated) flagged 8 stories of the tuning split and none of them was a
labelled conflict (docs/benchmarks/rules.md), so only ``check --model-checks`` asks the model
(:mod:`storytransformer.engine.judge`, which puts the heuristic's pairs first).
"""

from __future__ import annotations

from ..findings import Severity
from .registry import MODEL_SCOPE, Example, declare

CRITERION = "conflict-free"

declare("ST1201", "conflicting-stories", CRITERION, Severity.WARNING,
        "Another story of the backlog contradicts this one (same role and object, opposite actions or rules). "
        "Needs a language model: "
        "`check --model-checks`, `report --model-checks` and the editor's Run Model Checks run it.",
        scope=MODEL_SCOPE, default_on=False,
        fix="Decide which rule holds, then change or delete the other story.",
        examples=(Example("As a moderator, I want to show all estimates as soon as they are given.\n"
                          "As a participant, I want estimates shown only once everyone has estimated.", flagged=True),
                  Example("As a moderator, I want to show all estimates as soon as they are given.\n"
                          "As a participant, I want to see who gave which estimate.", flagged=False)))

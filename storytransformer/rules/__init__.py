"""The rules: importing this package registers every rule in :data:`RULES`.

The registry itself (the :class:`Rule` type, :func:`rule`, :func:`declare`) is
:mod:`.registry`; rule modules import it, never this package, so loading the rules is
free of import cycles.
"""

from __future__ import annotations

from .registry import (DOCS_URL, MAX_STORY_CHARS, MODEL_SCOPE, PREPARE, RULES, Example, FixKind, Rule, declare,
                       merge_candidate_codes, rule)

__all__ = ["DOCS_URL", "MAX_STORY_CHARS", "MODEL_SCOPE", "PREPARE", "RULES", "Example", "FixKind", "Rule", "declare",
           "merge_candidate_codes", "rule"]


def _load_all() -> None:
    from . import (atomic, complete, conceptually_sound, conflict_free, estimatable, full_sentence,  # noqa: F401
                   independent, minimal, problem_oriented, unambiguous, uniform, unique, well_formed)

    # Rules whose findings come from the similarity index; declaring them is cheap (no numpy, no model).
    from ..similarity import semantic_rules as _similarity_rules  # noqa: F401

_load_all()

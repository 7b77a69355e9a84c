"""The semantic rules, declared in the shared registry so configuration, docs and
``select`` / ``ignore`` know them; their findings come from :mod:`.findings`."""

from __future__ import annotations

from ..findings import Severity
from ..rules import RULES, declare

SEMANTIC_DUPLICATE = "ST603"
OVERLAP = "ST604"
SAME_GOAL = "ST605"


def declare_rules() -> None:
    if SEMANTIC_DUPLICATE in RULES and RULES[SEMANTIC_DUPLICATE].check is None:
        return
    declare(SEMANTIC_DUPLICATE, "semantic-duplicate", "unique", Severity.WARNING,
            "Another story asks for the same thing for the same role in other words.")
    # "unique" rather than "independent": an overlap is a partial duplicate (the same
    # role asks for overlapping means), resolved by merging, not by ordering the stories.
    # Off by default: annotators label few pairs as overlaps and no score separates them from related
    # stories (precision 0.08 on the labelled pairs; docs/benchmarks/similarity_quality.md).
    declare(OVERLAP, "overlap", "unique", Severity.INFO,
            "Another story of the same role overlaps this one's means (or the same means for another benefit): a merge candidate.",
            default_on=False)
    declare(SAME_GOAL, "same-goal-other-role", "unique", Severity.INFO,
            "Another role asks for the same means; the stories may be merged into one with both roles.",
            default_on=False)


declare_rules()

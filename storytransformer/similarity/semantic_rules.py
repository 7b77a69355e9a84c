"""The semantic rules, declared in the shared registry so configuration, docs and
``select`` / ``ignore`` know them; their findings come from :mod:`.findings`."""

from __future__ import annotations

from ..findings import Severity
from ..rules.registry import RULES, Example, declare

SEMANTIC_DUPLICATE = "ST603"
OVERLAP = "ST604"
SAME_GOAL = "ST605"


def declare_rules() -> None:
    if SEMANTIC_DUPLICATE in RULES and RULES[SEMANTIC_DUPLICATE].check is None:
        return
    declare(SEMANTIC_DUPLICATE, "semantic-duplicate", "unique", Severity.WARNING,
            "Another story asks for the same thing for the same role in other words.", merge_candidate=True,
            fix="Merge the two stories into one (\"Merge with\" with a model), or make the difference explicit.",
            examples=(Example("As a visitor, I want to search books.\nAs a visitor, I want to look up books.", flagged=True),
                      Example("As a visitor, I want to search books.\nAs a visitor, I want to pay a fine.", flagged=False)))
    # "unique" rather than "independent": an overlap is a partial duplicate (the same
    # role asks for overlapping means), resolved by merging, not by ordering the stories.
    # Off by default: annotators label few pairs as overlaps and no score separates them from related
    # stories (held-out precision 0.20, recall 0.22; docs/benchmarks/similarity_quality.md).
    # An overlap is close and shares the means but is not a duplicate: another story is nearer to one of
    # the two (the near-best margin), or the benefit differs. So the flagged example needs three stories.
    declare(OVERLAP, "overlap", "unique", Severity.INFO,
            "Another story of the same role overlaps this one's means (or the same means for another benefit): a merge candidate.",
            default_on=False, merge_candidate=True,
            fix="Merge the overlapping stories, or narrow each one to what only it asks for.",
            examples=(Example("As a member, I want to reserve and borrow books, so that I can keep borrowing books from the library.\n"
                              "As a member, I want to reserve and borrow library books, so that I can keep borrowing books from the library.\n"
                              "As a member, I want to reserve books and borrow e-books, so that I can keep borrowing books from the library.",
                              flagged=True),
                      Example("As a member, I want to reserve and borrow books, so that I can keep borrowing books from the library.\n"
                              "As a member, I want to update my postal address, so that letters from the library reach me.",
                              flagged=False)))
    declare(SAME_GOAL, "same-goal-other-role", "unique", Severity.INFO,
            "Another role asks for the same means; the stories may be merged into one with both roles.",
            default_on=False, merge_candidate=True,
            fix="Merge into one story naming both roles, or say why each role needs it differently.",
            examples=(Example("As a patient, I want to book an appointment online.\n"
                              "As a receptionist, I want to book an appointment online.", flagged=True),
                      Example("As a patient, I want to book an appointment online.\n"
                              "As a receptionist, I want to print the day's schedule.", flagged=False)))


declare_rules()

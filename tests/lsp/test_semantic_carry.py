"""Semantic findings carried to a later text of a document (unit tests of ``semantic.carry``): they stay
on their story, word for word, wherever it moved, and are left out once their story changed."""

from __future__ import annotations

from storytransformer.findings import Finding, Severity
from storytransformer.story import Position, Range
from storytransformer_server.lsp.semantic import Held, carry

P = "As a visitor, I want to look up books in the catalogue, so that I can find something to read."
Q = "As a member, I want to renew a loan online, so that I avoid a fine."
NEW = "As a member, I want to pay a fine online, so that my account is cleared."


def on_line(line: int, text: str) -> Finding:
    return Finding("ST603", "unique", Severity.WARNING, "Semantic duplicate", "/w/a.txt",
                   Range(Position(line, 0), Position(line, len(text))), f"L{line + 1}")


def test_a_finding_moves_with_its_story_when_lines_are_inserted_above() -> None:
    held = Held(3, f"{Q}\n{P}\n", (on_line(1, P),))
    (moved,) = carry(held, f"{NEW}\n{NEW}\n{Q}\n{P}\n")
    assert moved.range.start.line == 3 and moved.range.end.line == 3
    assert moved.message == "Semantic duplicate"


def test_a_finding_whose_story_changed_or_went_is_left_out() -> None:
    held = Held(3, f"{Q}\n{P}\n", (on_line(0, Q), on_line(1, P)))
    (kept,) = carry(held, f"{Q}\n{P[:-1]} soon.\n")
    assert kept.range.start.line == 0
    assert carry(held, f"{NEW}\n") == ()


def test_the_nearest_copy_of_a_repeated_story_takes_the_finding() -> None:
    held = Held(1, f"{Q}\n{NEW}\n{P}\n", (on_line(2, P),))
    (moved,) = carry(held, f"{Q}\n{NEW}\n{NEW}\n{P}\n{NEW}\n{NEW}\n{NEW}\n{P}\n")
    assert moved.range.start.line == 3


def test_an_unchanged_text_keeps_every_finding_as_it_was() -> None:
    findings = (on_line(0, Q), on_line(1, P))
    assert carry(Held(2, f"{Q}\n{P}\n", findings), f"{Q}\n{P}\n") == findings

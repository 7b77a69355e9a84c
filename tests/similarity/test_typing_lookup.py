"""The typing lookup: which stories already ask what an unfinished line asks.

The search logic is tested on hand-made vectors (the ranking, the threshold, one story per text, the
line being typed left out); the lookup itself with the real packaged model on a small real workspace.
"""

from __future__ import annotations

import numpy as np
import pytest

from storytransformer.similarity.typing_lookup import (MIN_MEANS_WORDS, NO_ROLE, Query, Snapshot,
                                                       TypingLookup, first_half, part_score, skip_typed,
                                                       typed_story)
from storytransformer.story import Position, Range, Story


def story(file: str, line: int, text: str) -> Story:
    return Story(id=f"{file}-{line}", file=file, text=text,
                 range=Range(Position(line, 0, 0), Position(line, len(text), len(text))))


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, np.float32)
    return v / np.linalg.norm(v)


# -- what counts as a story being typed -----------------------------------------------------
@pytest.mark.parametrize("line", ["", "   ", "As a librarian,", "As a librarian, I want to",
                                  "As a librarian, I want to renew", "Meeting notes: renew the loans policy"])
def test_too_little_typed_is_no_query(line):
    assert typed_story(line) is None


def test_a_means_of_two_words_is_enough_and_the_role_may_be_missing():
    s = typed_story("As a librarian, I want to renew books")
    assert s is not None and s.means is not None and s.means.text == "renew books"
    assert s.role is not None and s.role.text == "librarian"
    headless = typed_story("I want to renew my loans online")
    assert headless is not None and headless.means.text.startswith("renew my")
    assert MIN_MEANS_WORDS == 2


def test_first_half_keeps_the_role_and_half_of_the_means():
    text = "As a member, I want to renew a borrowed book online, so that I avoid a fine."
    half = first_half(text)
    assert half == "As a member, I want to renew a borrowed"  # 5 means words -> the first 3
    assert typed_story(half) is not None
    assert first_half("As a member, I want to log in.") == "As a member, I want to log in"  # never below 2 words
    assert first_half("renew books online quickly please") == "renew books online"  # no means: half the words


# -- the search over a snapshot ------------------------------------------------------------
def snapshot() -> Snapshot:
    rows = [unit(1, 0, 0), unit(0.9, 0.1, 0), unit(0, 1, 0), unit(0.7, 0, 0.7)]
    groups = [[story("b.txt", 4, "renew a loan"), story("a.txt", 9, "Renew a loan.")],
              [story("a.txt", 2, "extend a loan")],
              [story("c.txt", 0, "print statistics")],
              [story("c.txt", 5, "renew and pay")]]
    return Snapshot(np.stack(rows), groups)


def test_best_first_one_story_per_text_at_its_first_place():
    found = snapshot().search(unit(1, 0, 0), k=3, threshold=0.5)
    assert [(m.story.file, m.line) for m in found] == [("a.txt", 9), ("a.txt", 2), ("c.txt", 5)]
    assert found[0].similarity == pytest.approx(1.0, abs=1e-6)
    assert [m.similarity for m in found] == sorted((m.similarity for m in found), reverse=True)


def test_threshold_and_k_limit_what_is_offered():
    snap = snapshot()
    assert [m.story.text for m in snap.search(unit(1, 0, 0), k=1, threshold=0.5)] == ["Renew a loan."]
    high = snap.search(unit(1, 0, 0), k=5, threshold=0.95)
    assert [m.story.text for m in high] == ["Renew a loan.", "extend a loan"]  # 0.99 in, 0.71 out
    assert snap.search(unit(0, 0, -1), k=5, threshold=0.1) == []  # nothing close: nothing offered


def test_the_line_being_typed_is_never_offered():
    skip = skip_typed("a.txt", 9)
    found = snapshot().search(unit(1, 0, 0), k=2, threshold=0.5, skip=skip)
    # the same text elsewhere is still a duplicate; the typed line itself is not
    assert [(m.story.file, m.line) for m in found] == [("b.txt", 4), ("a.txt", 2)]
    only = Snapshot(np.stack([unit(1, 0, 0), unit(0.9, 0.1, 0)]),
                    [[story("a.txt", 9, "typed")], [story("a.txt", 2, "other")]])
    assert [m.line for m in only.search(unit(1, 0, 0), k=2, threshold=0.5, skip=skip)] == [2]


def test_a_snapshot_needs_one_group_per_vector():
    with pytest.raises(ValueError, match="2 vectors for 1 story texts"):
        Snapshot(np.zeros((2, 3), np.float32), [[story("a.txt", 0, "x")]])
    assert Snapshot(np.zeros((0, 3), np.float32), []).search(unit(1, 0, 0)) == []


# -- part by part: means against means, role against role ----------------------------------------
def parted() -> Snapshot:
    """Two stories with the same means under two roles, and a third with another means."""
    whole = np.stack([unit(1, 0.1, 0), unit(1, 0, 0.1), unit(0.8, 0.6, 0)])
    means = np.stack([unit(1, 0, 0), unit(1, 0, 0), unit(0, 1, 0)])
    roles = np.stack([unit(0, 0, 1), unit(0, 1, 0), np.zeros(3, np.float32)])
    groups = [[story("a.txt", 0, "As a reader, I want to renew a loan.")],
              [story("a.txt", 1, "As a librarian, I want to renew a loan.")],
              [story("b.txt", 0, "Print the statistics.")]]
    return Snapshot(whole, groups, means, roles, np.array([True, True, False]))


def test_the_typed_role_tells_which_of_two_stories_with_the_same_means_is_meant():
    snap = parted()
    as_librarian = snap.search(Query(unit(1, 0.05, 0.05), unit(1, 0, 0), unit(0, 1, 0)), k=3, threshold=-1.0)
    as_reader = snap.search(Query(unit(1, 0.05, 0.05), unit(1, 0, 0), unit(0, 0, 1)), k=3, threshold=-1.0)
    assert [m.line for m in as_librarian[:2]] == [1, 0] and [m.line for m in as_reader[:2]] == [0, 1]


def test_the_offer_is_ranked_by_the_parts_and_shows_the_whole_cosine():
    snap = parted()
    q = Query(unit(0.8, 0.6, 0), unit(1, 0, 0), None)  # as a whole closest to b.txt, by its means to a.txt
    by_whole = snap.search(q.whole, k=3, threshold=-1.0)
    by_parts = snap.search(q, k=3, threshold=-1.0)
    assert by_whole[0].story.file == "b.txt" and by_whole[0].score == pytest.approx(by_whole[0].similarity)
    assert by_parts[0].story.file == "a.txt" and by_parts[-1].story.file == "b.txt"
    top = by_parts[0]
    whole, means = float(unit(0.8, 0.6, 0) @ snap.vectors[top.line]), 1.0
    assert top.similarity == pytest.approx(whole, abs=1e-5)  # the product's one figure: the whole cosine
    # no role typed: every story gets the same assumed role cosine
    assert top.score == pytest.approx(part_score(np.float32(whole), np.float32(means), np.float32(NO_ROLE)), abs=1e-5)


def test_a_story_without_a_role_is_not_scored_by_its_empty_role_vector():
    snap = parted()
    q = Query(unit(0.8, 0.6, 0), unit(0, 1, 0), unit(0, 1, 0))
    whole, score = snap.scores(q)
    assert score[2] == pytest.approx(float(part_score(whole[2], np.float32(1.0), np.float32(NO_ROLE))), abs=1e-5)


def test_parts_must_match_the_story_texts():
    with pytest.raises(ValueError, match="1 means rows for 2 story texts"):
        Snapshot(np.zeros((2, 3), np.float32), [[story("a.txt", 0, "x")], [story("a.txt", 1, "y")]],
                 means=np.zeros((1, 3), np.float32))


# -- the lookup with the real model ----------------------------------------------------------
BACKLOG = [
    "As a member, I want to renew a borrowed book online, so that I do not pay a late fee.",
    "As a librarian, I want to print the monthly loan statistics, so that I can report to the board.",
    "As a visitor, I want to search the catalogue by author, so that I find the books I like.",
    "As an administrator, I want to reset a user's password, so that they can log in again.",
]


@pytest.fixture(scope="module")
def lookup(embedder):
    from storytransformer.config import SimilarityConfig
    from storytransformer.formats.text import read_text
    from storytransformer.similarity.index import SimilarityIndex

    stories = list(read_text("/ws/library.txt", "\n".join(BACKLOG) + "\n").stories)
    # the line being typed is already in the index (the editor shares unsaved text with the daemon)
    stories += read_text("/ws/new.txt", "As a patron, I would like to renew my borrowed book on the web\n").stories
    index = SimilarityIndex.build(stories, SimilarityConfig(), embedder=embedder)
    found = TypingLookup(embedder)
    found.refresh(index)
    return found, index


def test_the_snapshot_reads_the_part_vectors_the_index_cached(lookup):
    """Nothing is embedded for the snapshot: its means and role rows are the index's own vectors."""
    found, index = lookup
    snap = found.snapshot
    assert snap.means is not None and snap.roles is not None and len(snap.means) == len(snap.vectors)
    row = next(i for i, g in enumerate(snap.stories) if g[0].text == BACKLOG[3])
    means, role = found.embedder.encode(["reset a user's password", "administrator"])
    assert float(snap.means[row] @ means) == pytest.approx(1.0, abs=1e-3)
    assert float(snap.roles[row] @ role) == pytest.approx(1.0, abs=1e-3) and snap.has_role[row]


def test_half_a_restatement_finds_the_story_it_restates(lookup):
    found, _ = lookup
    matches = found.find("As a patron, I would like to renew my borrowed book on the web", "/ws/new.txt", 0)
    assert matches, "the renewal story was not offered"
    assert (matches[0].story.file, matches[0].line) == ("/ws/library.txt", 0)
    assert all(m.story.file != "/ws/new.txt" for m in matches)  # never the typed line itself


def test_a_story_of_another_operation_on_the_same_thing_is_not_offered(lookup):
    """Typing "print the yearly loan statistics" offers the printing story; typing "export the monthly
    loan statistics" does not (another operation on the same thing: a sibling, not the same need)."""
    found, _ = lookup
    printing = found.find("As a librarian, I want to print the yearly loan statistics", "/ws/new.txt", 0,
                          threshold=0.0)
    assert printing and printing[0].story.text == BACKLOG[1]
    exporting = found.find("As a librarian, I want to export the monthly loan statistics", "/ws/new.txt", 0,
                           threshold=0.0)
    assert all(m.story.text != BACKLOG[1] for m in exporting)


def test_a_line_unrelated_to_everything_finds_nothing(lookup):
    found, _ = lookup
    assert found.find("As a pilot, I want to calibrate the altimeter before take-off", "/ws/new.txt", 0) == []


def test_the_figure_is_the_one_similar_shows(lookup):
    """A whole story typed: its similarity to another is the cosine `similar` reports for the pair."""
    found, index = lookup
    typed = "As a member, I want to renew a book online, so that I avoid late fees."
    (first, *_) = found.find(typed, "/ws/new.txt", 5, threshold=0.0)
    shown = {(n.story.file, n.story.line): n.score for n in index.neighbours(typed, k=3)}
    assert first.similarity == pytest.approx(shown[(first.story.file, first.line)], abs=2e-3)


def test_each_lookup_embeds_only_the_typed_line_and_its_parts_in_one_call(lookup, monkeypatch):
    found, _ = lookup
    seen: list[list[str]] = []
    model = found.embedder.model
    real = model.encode

    def counting(texts, *a, **kw):
        seen.append(list(texts))
        return real(texts, *a, **kw)

    monkeypatch.setattr(model, "encode", counting)
    found._roles.clear()
    found.find("As a visitor, I want to look up books by their writer", "/ws/new.txt", 3)
    # one encode call; nothing of the workspace is embedded again, only the line, its means and its role
    assert seen == [["As a visitor, I want to look up books by their writer", "look up books by their writer",
                     "visitor"]]
    # the next keystroke: the role typed before is not embedded again, and gives the same offer
    first = found.find("As a visitor, I want to look up books by their writer", "/ws/new.txt", 3)
    found.find("As a visitor, I want to look up books by their", "/ws/new.txt", 3)
    assert seen[1:] == [["As a visitor, I want to look up books by their writer", "look up books by their writer"],
                        ["As a visitor, I want to look up books by their", "look up books by their"]]
    found._roles.clear()
    assert [(m.story.file, m.line, round(m.score, 4)) for m in found.find(
        "As a visitor, I want to look up books by their writer", "/ws/new.txt", 3)] == \
        [(m.story.file, m.line, round(m.score, 4)) for m in first]

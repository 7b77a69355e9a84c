"""Deterministic candidates: built only from the parts of the sources, with provenance."""

from __future__ import annotations

from storytransformer.engine.candidates import conjuncts, merge_candidates, rewrite_candidates, split_candidates
from storytransformer.formats import read_source


def stories(*lines: str):
    return read_source("s.txt", "\n".join(lines) + "\n").stories


def test_merge_combines_parts_and_records_their_sources():
    a, b = stories("As a visitor, I want to search events, so that I find concerts.",
                   "As a visitor, I want to search events by date.")
    found = merge_candidates([a, b])
    texts = [c.stories[0] for c in found]
    assert "As a visitor, I want to search events by date, so that I find concerts." in texts
    c = found[texts.index("As a visitor, I want to search events by date, so that I find concerts.")]
    assert c.provenance == {"role": a.id, "means": b.id, "ends": a.id}


def test_merge_needs_two_stories_with_a_means():
    a, b = stories("As a visitor, I want to search events.", "Just a note about events")
    assert merge_candidates([a, b]) == []


def test_article_agrees_with_the_role():
    (a,) = stories("As a admin, I want to lock accounts.")
    (c, *_) = rewrite_candidates(a)
    assert c.stories[0].startswith("As an admin, I want to lock accounts")


def test_split_distributes_the_shared_object():
    assert ["add items", "remove items"] in conjuncts("add and remove items")
    assert ["create users", "create groups"] in conjuncts("create users and groups")


def test_split_gives_no_verb_to_a_piece_that_has_its_own():
    variants = conjuncts("search the catalogue and reserve a book")
    assert variants == [["search the catalogue", "reserve a book"]]  # never "search reserve a book"


def test_split_candidates_repeat_role_and_ends():
    (s,) = stories("As a cook, I want to chop and fry onions, so that the soup tastes good.")
    found = [c.stories for c in split_candidates(s)]
    assert ("As a cook, I want to chop onions, so that the soup tastes good.",
            "As a cook, I want to fry onions, so that the soup tastes good.") in found


def test_rewrite_drops_trailing_text_and_fixes_case():
    (s,) = stories("as a pilot i want to see the weather map. It should load fast.")
    texts = [c.stories[0] for c in rewrite_candidates(s)]
    assert "As a pilot, I want to see the weather map." in texts


def test_rewrite_writes_a_repeated_ends_marker_once():
    (s,) = stories("As a attendee, I want to join a waitlist, so that so they can seat me in a class.")
    texts = [c.stories[0] for c in rewrite_candidates(s)]
    assert "As an attendee, I want to join a waitlist, so that they can seat me in a class." in texts
    (s,) = stories("As a host, I want a guest list, so that, so that I can greet people.")
    assert "As a host, I want a guest list, so that I can greet people." in [c.stories[0] for c in rewrite_candidates(s)]


def test_split_gives_no_verb_to_a_second_wish_and_does_not_split_it_off():
    assert conjuncts("enable customers to give feedback and need an easy way to read it") == []
    variants = conjuncts("create a profile and have a page for it")
    assert ["create a profile", "create have a page for it"] not in variants

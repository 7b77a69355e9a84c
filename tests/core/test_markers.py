"""The markers of a story composed role first, from sources written in any order or case."""

import pytest

from storytransformer.markers import article_for, lead_role, means_with_subject, trailing_ends


@pytest.mark.parametrize("noun, article", [
    ("user", "a"), ("admin", "an"), ("unit manager", "a"), ("owner", "an"),
    ("UI designer", "a"),  # U said "you"
    ("NSF employee", "an"), ("MRI operator", "an"), ("HR manager", "an"),  # spelt out, a vowel sound first
    ("FABS user", "a"), ("NASA engineer", "a"),  # said as a word
    ("API user", "an"), ("IT officer", "an"), ("PI", "a"), ("CMS editor", "a"),
])
def test_article_for(noun, article):
    assert article_for(noun) == article


@pytest.mark.parametrize("marker, role, lead", [
    ("as a", "member", "As a"), ("as an", "member", "As a"), ("As a", "admin", "As an"),
    ("as the", "organiser", "As the"), ("", "member", "As a"),
])
def test_lead_role(marker, role, lead):
    assert lead_role(marker, role) == lead


@pytest.mark.parametrize("marker, with_subject", [
    ("want to", "I want to"),  # "I, as a member, want to ..."
    ("need", "I need"), ("i want to", "I want to"), ("I'd like to", "I'd like to"), ("we need", "we need"),
    ("", "I want to"),
])
def test_means_with_subject(marker, with_subject):
    assert means_with_subject(marker) == with_subject


@pytest.mark.parametrize("marker, after_means", [
    ("To", "in order to"), ("In order to", "in order to"), ("So that", "so that"), ("so", "so"), ("", "so that"),
])
def test_trailing_ends(marker, after_means):
    assert trailing_ends(marker) == after_means

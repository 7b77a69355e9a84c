"""The deterministic cluster merge keeps every role, joins objects of one action, keeps every ends,
and invents nothing."""

import re

from storytransformer.formats.text import read_text
from storytransformer.similarity.merge import merge_cluster


def stories(*lines):
    return read_text("b.txt", "\n".join(lines) + "\n").stories


def words(text):
    return set(re.findall(r"[\w']+", text.lower()))


def test_roles_kept_objects_joined_every_ends_kept():
    src = stories("As a visitor, I want to export the reports, so that I can read them.",
                  "As a researcher, I want to export the invoices, so that I can check the yearly costs of the project.")
    merged = merge_cluster(src)
    assert merged == ("As a visitor or researcher, I want to export the reports and the invoices, "
                      "so that I can read them and I can check the yearly costs of the project.")
    template = {"as", "a", "an", "i", "want", "to", "or", "and", "so", "that"}
    assert words(merged) <= set().union(*(words(s.text) for s in src)) | template


def test_different_actions_are_not_merged_and_identical_means_appear_once():
    src = stories("As an editor, I want to publish articles.", "As an editor, I want to delete articles.")
    assert merge_cluster(src) is None  # one atomic story cannot keep both actions
    same = stories("As a user, I want to log in, so that I work.", "As an admin, I want to log in.")
    assert merge_cluster(same) == "As a user or admin, I want to log in, so that I work."


def test_fewer_than_two_stories_with_a_means_give_nothing():
    assert merge_cluster(stories("As a user, I want to log in.", "Opening hours.")) is None

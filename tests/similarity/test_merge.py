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


def test_two_means_that_start_with_an_article_share_no_action_whose_objects_could_be_joined():
    """ "I want the importer to read CSV files" and "I want the exporter to write PDF files": "the" is no verb,
    so no "the importer ... and exporter ..." is made; as duplicates, one wording is kept, the other said."""
    src = stories("As a clerk, I want the importer to read CSV files.", "As a clerk, I want the exporter to write PDF files.")
    assert merge_cluster(src) is None
    from storytransformer.similarity.merge import merge_proposals

    first = merge_proposals(src, same_need=True)[0]
    assert first.text in {s.text for s in src} and [x.kind for x in first.said] == ["means"]
    verb = stories("As a clerk, I want to import the CSV files.", "As a clerk, I want to import the PDF files.")
    assert merge_cluster(verb) == "As a clerk, I want to import the CSV files and the PDF files."


def test_fewer_than_two_stories_with_a_means_give_nothing():
    assert merge_cluster(stories("As a user, I want to log in.", "Opening hours.")) is None

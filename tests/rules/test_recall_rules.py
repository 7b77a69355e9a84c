"""The rules added for recall (issue 15): what each catches, and the wording each must leave alone.

The worked examples of every rule are linted by tests/core/test_rule_examples.py; these cases pin
the edges: the sentences the new patterns were written not to flag.
"""

from __future__ import annotations

import pytest

from storytransformer.config import Config
from storytransformer.rules import RULES
from tests.core.helpers import codes_on_line, lint_texts


def codes(text: str, config: Config | None = None) -> set[str]:
    _, findings = lint_texts({"s.txt": text}, config)
    return codes_on_line(findings, "s.txt", 1)


@pytest.mark.parametrize("story", [
    "As a DB administrator, I want to see the subscribers of a report in order research complaints.",
    "As a patron, I want to see related reports for the purpose finding other information.",
    "As a manager, I want to be able t run a report every month.",
    "As a coordinator, I want an attendance view, so that, so that we see who came.",
    "As a user, I want to search by for collections by name.",
    "As a staff member, I want to assign an application, so that I can review the for compliance.",
    "As an admin, I want to automatically validated the ingested contents.",
    "As a l staff member, I want to search for property records.",
])
def test_grammar_slips_are_flagged(story):
    assert "ST404" in codes(story)


@pytest.mark.parametrize("story", [
    "As a member, I want a to-do list of my loans, so that I return them in order to avoid fines.",
    "As a researcher, I want to link objects, for example File A is an analysis of File B.",
    "As a planner, I want a grid of 3 x 4 seats, so that I can book one.",
    "As a user, I want to search by title or by author.",
    "As a user, I want to embed the viewer in my site, so that visitors see it.",
    "As a curator, I want to see the e-mail of the depositor, i.e. the person who deposited it.",
    "As a member, I want to know the purpose of each fee.",
    "as a member, i want to renew a loan, so that i can keep the book.",
])
def test_ordinary_wording_is_not_a_grammar_slip(story):
    assert "ST404" not in codes(story)


def test_a_story_running_on_past_the_limit_is_a_run_on_and_a_shorter_one_is_not():
    from storytransformer.rules.full_sentence import RUN_ON_WORDS

    head = "As a trainer, I want to see "
    long = head + " ".join(["attendee"] * (RUN_ON_WORDS + 1 - len(head.split()))) + "."
    assert len(long.split()) == RUN_ON_WORDS + 1 and "ST405" in codes(long)
    short = head + " ".join(["attendee"] * (RUN_ON_WORDS - len(head.split()))) + "."
    assert len(short.split()) == RUN_ON_WORDS and "ST405" not in codes(short)


@pytest.mark.parametrize("story, flagged", [
    ("As an older person, I want to receive support to use the bus.", True),
    ("As a developer, I want to obtain app development support.", True),
    ("As a curator, I want to harvest useful metadata from the repository.", True),
    ("As an executive, I want to have full access to data of my company.", True),
    ("As a developer, I want the importer to support CSV files.", False),
    ("As a developer, I want to have support for CSV files.", False),
    ("As an executive, I want to read the sales figures of my company.", False),
])
def test_catch_all_terms(story, flagged):
    assert ("ST702" in codes(story)) is flagged


def test_an_accepted_word_is_never_a_catch_all():
    story = "As a curator, I want to harvest useful metadata from the repository."
    config = Config()
    config.accepted_words = ["useful"]
    assert "ST702" in codes(story) and "ST702" not in codes(story, config)


@pytest.mark.parametrize("story, flagged", [
    ("As an administrator, I want to disseminate the aforementioned works in a branded space.", True),
    ("As an editor, I want to reuse the layout, as in the previous story.", True),
    ("As a user, I want the same filters as the above report.", True),
    ("As an editor, I want to export the report, so that I can send it, as described in the other story.", True),
    ("As a moderator, I want to browse through previous games.", False),
    ("As a moderator, I want to move to the next story, so that the team can estimate it.", False),
    ("As an estimator, I want to see the previous stories we estimated.", False),
    ("As a reader, I want to see the following information: title and date.", False),
])
def test_references_to_another_story(story, flagged):
    assert ("ST1101" in codes(story)) is flagged


def test_goal_as_means_is_off_by_default_and_flags_when_selected():
    story = "As an asset manager, I want to be assured that every copy is monitored."
    assert not RULES["ST1001"].default_on and "ST1001" not in codes(story)
    config = Config()
    config.select = ["ST1001"]
    assert "ST1001" in codes(story, config)
    assert "ST1001" not in codes("As an asset manager, I want a report of changed copies.", config)


@pytest.mark.parametrize("story, flagged", [
    ("As a manager, I want to link the archive, so that I can analyse impact of publications I can link funding.", True),
    ("As an older person, I want to have the shirt has to be light.", True),
    ("As a depositor, I want guarantees, so that I can use my data and I can meet funder rules.", False),
    ("As a researcher, I want to see other sections, so that I can see if we could share posts.", False),
    ("As a user, I want to have the report sent to me every week.", False),
])
def test_run_together_clauses_and_a_second_verb_are_grammar_slips(story, flagged):
    assert ("ST404" in codes(story)) is flagged


@pytest.mark.parametrize("story, flagged", [
    ("As a gardener, I want to book a plot, so that it will possible to plant in spring.", True),
    ("As a gardener, I want to book a plot, so that it will be possible to plant in spring.", False),
    ("As a gardener, I want to book a plot, so that I am able to plant and it is available.", False),
    ("As a coach, I want a timetable that should be show every free court.", True),
    ("As a coach, I want a timetable to be shown to players and be allowed for booking.", False),
    ("As a baker, I want an oven that is adjustable in is settings.", True),
    ("As a baker, I want an oven that is adjustable in its settings, so that what is in it bakes evenly.", False),
    ("As a tenant, I want to sign the lease online, so that the landlord has it on file..", True),
    ("As a tenant, I want to sign the lease online, so that the landlord has it on file...", False),
    ("As a runner, I want to remind me to stretch after a run.", True),
    ("As a runner, I want the watch to remind me to stretch after a run.", False),
    ("As a runner, I want to email myself a summary, so that I see my weekly distance.", False),
    ("As a runner, I want a coach to meet me at the track, so that I can train safely.", False),
])
def test_slips_of_any_english_sentence_are_grammar_slips(story, flagged):
    """Modal or 'be' with no verb, a verb after 'in', a doubled full stop, the user as their own object."""
    assert ("ST404" in codes(story)) is flagged


@pytest.mark.parametrize("story, flagged", [
    ("As a visitor, I want to have a link on the home page to a list of classes.", True),
    ("As a sponsor, I want to find a link in the menu to the registration form.", True),
    ("As a buyer, I want to be offered choices on the second page of registration.", True),
    ("As a visitor, I want to see a list of classes, so that I can pick one.", False),
    ("As a researcher, I want to link my papers in the repository to my profile.", False),
    ("As a visitor, I want to see the classes on the home page, so that I find them.", True),
])
def test_screen_placement_is_reported_when_selected(story, flagged):
    config = Config()
    config.select = ["ST802"]
    assert ("ST802" in codes(story, config)) is flagged
    assert not RULES["ST802"].default_on and "ST802" not in codes(story)


BACKLOG = "".join(f"As a member, I want to renew loan {i}, so that I avoid a fine.\n" for i in range(6))


@pytest.mark.parametrize("line, flagged", [
    ("I want to renew a loan, so that I avoid a fine.", True),  # 'I' instead of 'As a' (docs/labelling.md)
    ("Fines and payments", True),  # a heading amid stories
    ("the rest of a story broken over two lines.", True),
    ("As a member, I want to renew a loan, so that I avoid a fine.", False),
])
def test_a_line_outside_the_dominant_template_is_not_uniform(line, flagged):
    _, findings = lint_texts({"s.txt": BACKLOG + line})
    assert ("ST501" in codes_on_line(findings, "s.txt", 7)) is flagged


def test_a_backlog_where_most_lines_are_not_stories_has_no_template_to_deviate_from():
    text = "".join(f"Heading {i}\n" for i in range(6)) + BACKLOG + "Another heading"
    _, findings = lint_texts({"s.txt": text})
    assert "ST501" not in codes_on_line(findings, "s.txt", 13)
    assert "ST103" in codes_on_line(findings, "s.txt", 13)


MODEL_CODES = ("ST406", "ST606", "ST1002", "ST1102", "ST1201", "ST1301")


def test_checks_that_need_a_language_model_say_so_and_produce_nothing():
    import json
    import subprocess
    import sys

    run = [sys.executable, "-m", "storytransformer", "rules"]
    listing = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    # they run only when asked for: `check --model-checks` (tests/engine/test_judge*.py)
    model_lines = [line for line in listing.splitlines() if "needs a language model: check --model-checks" in line]
    assert sorted(line.split()[0] for line in model_lines) == sorted(MODEL_CODES)
    as_json = json.loads(subprocess.run(run + ["--format", "json"], capture_output=True, text=True, check=True).stdout)
    assert {r["code"] for r in as_json if r["needs_model"]} == set(MODEL_CODES)
    config = Config()
    config.select = list(MODEL_CODES)  # selected, they still run nothing: no rule of words could find them
    for code in MODEL_CODES:
        assert RULES[code].check is None and not RULES[code].default_on
        defect = RULES[code].before
        _, findings = lint_texts({"s.txt": defect.text}, config)
        assert not any(f.code == code for f in findings)

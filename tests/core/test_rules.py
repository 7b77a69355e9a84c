"""Each rule on real stories (read from the real backlogs at test time) and on our own cases."""

import pytest

from storytransformer.config import Config
from storytransformer.lint import Linter
from storytransformer.workspace import Workspace

from .helpers import codes_on_line, lint_texts

# (backlog file, 1-based line, rule code, expected?) — hand-checked on the real backlogs.
REAL_CASES = [
    ("g16-mis.txt", 35, "ST103", True),            # a heading-like line, not a story
    ("g16-mis.txt", 48, "ST401", True),            # the rest of a line broken in two
    ("g02-federalspending.txt", 12, "ST201", True),  # "Upload and Validate the error message"
    ("g02-federalspending.txt", 1, "ST201", False),
    ("g13-planningpoker.txt", 27, "ST301", True),   # {0, 1/2, 1, 2, ...} inside the story
    ("g21-badcamp.txt", 15, "ST302", True),         # "The following information must be shown: ..."
    ("g03-loudoun.txt", 20, "ST402", True),         # "... status. So that I can finish it."
    ("g02-federalspending.txt", 78, "ST501", False),  # "I only want" is the backlog's "I want" (labels; the fix dropped "only")
    ("g02-federalspending.txt", 2, "ST501", False),
    ("g02-federalspending.txt", 11, "ST601", True),  # written twice in the file
    ("g02-federalspending.txt", 7, "ST701", True),   # "log better"
    ("g02-federalspending.txt", 2, "ST701", False),
    ("g04-recycling.txt", 1, "ST801", True),       # "click on the address"
    ("g02-federalspending.txt", 2, "ST801", False),
    ("g13-planningpoker.txt", 27, "ST901", False),  # 46 words, not an epic to the annotators (max-words is 80)
]


@pytest.fixture(scope="module")
def real_findings(real_backlogs):
    ws = Workspace.from_paths([real_backlogs], Config())
    return Linter(ws, use_disk_cache=False).check()


@pytest.mark.parametrize("name, line, code, expected", REAL_CASES)
def test_real_cases(real_backlogs, real_findings, name, line, code, expected):
    path = str(real_backlogs / name)
    assert (code in codes_on_line(real_findings, path, line)) is expected


def test_real_backlogs_have_every_rule_family(real_findings):
    criteria = {f.criterion for f in real_findings}
    assert {"well-formed", "atomic", "minimal", "full-sentence", "uniform", "unique", "unambiguous",
            "problem-oriented", "estimatable"} <= criteria


@pytest.mark.parametrize("means, atomic", [
    ("add and edit articles", False),
    ("view and export reports", False),
    ("add/edit content", False),
    ("be able to create, edit and delete users", False),
    ("search for data and download it", False),
    ("see the terms and conditions", True),
    ("see the name and address of the camper", True),
    ("log in with my username and password", True),
    ("know when a file is uploaded and validated", True),
])
def test_atomic_conjunctions(means, atomic):
    _, findings = lint_texts({"b.txt": f"As a user, I want to {means}, so that I am done.\n"})
    assert ("ST201" not in {f.code for f in findings}) is atomic


@pytest.mark.parametrize("means, parts", [
    # the first verb read as a noun ("research prices"), the second after its own 'to'
    ("research holiday prices and to book a trip", ["research holiday prices", "book a trip"]),
    # a passive second action joined to the first: the system notifies
    ("reserve a meeting room, and be notified when it is free", ["reserve a meeting room", "be notified when it is free"]),
    # two passives the user asks the system for
    ("have the catalogue be indexed nightly and published on the website",
     ["have the catalogue be indexed nightly", "have the catalogue be published on the website"]),
])
def test_atomic_finds_actions_the_tagger_hides(means, parts):
    _, findings = lint_texts({"b.txt": f"As a traveller, I want to {means}, so that I am done.\n"})
    (f,) = [f for f in findings if f.code == "ST201"]
    assert f.data["parts"] == parts


@pytest.mark.parametrize("means", [
    "know whether the books were borrowed or returned",       # a question about states, one feature
    "export my loans every month and continue to do so",      # 'continue' adds no feature
    "enter my card details and have my account charged",      # the outcome of the one action
    "update my address in one place and be assured it is changed everywhere",  # a state of mind
])
def test_atomic_ignores_joined_verbs_that_add_no_feature(means):
    _, findings = lint_texts({"b.txt": f"As a member, I want to {means}, so that I am done.\n"})
    assert "ST201" not in {f.code for f in findings}


def test_atomic_fix_splits_into_stories_with_shared_object():
    _, findings = lint_texts({"b.md": "- As an editor, I want to add and edit articles, so that the site is current.\n"})
    (f,) = [f for f in findings if f.code == "ST201"]
    assert f.fix.edits[0].new_text == ("As an editor, I want to add articles, so that the site is current.\n"
                                       "- As an editor, I want to edit articles, so that the site is current.")


def test_well_formed_rules():
    text = "I want to log in.\nAs a user, the system logs me in.\nOpening hours.\nAs a user, I want to log in.\n"
    _, findings = lint_texts({"b.txt": text})
    assert codes_on_line(findings, "b.txt", 1) == {"ST101"}
    assert codes_on_line(findings, "b.txt", 2) == {"ST102"}
    assert codes_on_line(findings, "b.txt", 3) == {"ST103"}
    assert codes_on_line(findings, "b.txt", 4) == set()


def test_duplicates_across_files_relate_to_each_other():
    story = "As a member, I want to renew a loan, so that I keep the book.\n"
    _, findings = lint_texts({"a.txt": story, "b.txt": "As a member, I want to pay fines.\n" + story,
                              "c.txt": story.upper()})
    dup_a = [f for f in findings if f.file == "a.txt" and f.code == "ST601"]
    assert len(dup_a) == 1 and [r.file for r in dup_a[0].related] == ["b.txt"]
    assert dup_a[0].fix is None  # the first occurrence is kept
    (dup_b,) = [f for f in findings if f.file == "b.txt" and f.code == "ST601"]
    assert dup_b.fix is not None and dup_b.related[0].range.start.line == 0
    assert {f.code for f in findings if f.file == "c.txt"} == {"ST602"}


def test_vague_terms_are_located_exactly():
    line = "As a visitor, I want a fast and user-friendly search, so that I find books."
    _, findings = lint_texts({"b.txt": line})
    spans = sorted(line[f.range.start.character:f.range.end.character] for f in findings if f.code == "ST701")
    assert spans == ["fast", "user-friendly"]


def test_configured_vague_words_and_severity():
    cfg = Config(extend_vague_words=["blazing"], severity={"ST701": "error"})
    _, findings = lint_texts({"b.txt": "As a user, I want blazing search."}, cfg)
    (f,) = [f for f in findings if f.code == "ST701"]
    assert f.severity.value == "error" and "blazing" in f.message


@pytest.mark.parametrize("means, term", [
    ("to export the relevant records", "relevant"),
    ("to tag photos, videos and other media", "and other"),
    ("to be told about something new in my area", "something"),
    ("to sort loans by due date, shelf and any other field", "any other"),
    ("to print a receipt as necessary", "as necessary"),
    ("to reach as many readers as possible", "as possible"),
    ("high availability of the catalogue", "high"),
    ("an effective way to find overdue loans", "effective"),
    ("a well documented loan policy", "well documented"),
    ("well-visible return slots", "well-visible"),
    ("to list books of probable interest to me", "probable"),
])
def test_catch_alls_and_unmeasured_qualities_are_vague(means, term):
    _, findings = lint_texts({"b.txt": f"As a librarian, I want {means}, so that I can plan.\n"})
    assert [f.data["term"].lower() for f in findings if f.code == "ST701"] == [term]


@pytest.mark.parametrize("means", ["to export the loan records", "to tag photos and videos",
                                   "to see other branches' opening hours", "to lower the fine"])
def test_specific_means_are_not_vague(means):
    _, findings = lint_texts({"b.txt": f"As a librarian, I want {means}, so that I can plan.\n"})
    assert not [f for f in findings if f.code == "ST701"]


@pytest.mark.parametrize("text, said", [
    ("As a member, I want to renew a loan and I expect this to fail when the book is reserved.", "I expect"),
    ("As a member, I want to open an account and I want to link my card to it as part of opening.", "I want"),
    ("As members, we want to book a room, but we also need a projector in it.", "we also need"),
])
def test_a_second_want_or_expect_inside_the_means_is_not_minimal(text, said):
    _, findings = lint_texts({"b.txt": text + "\n"})
    (f,) = [f for f in findings if f.code == "ST303"]
    assert text[f.range.start.character:f.range.end.character] == said and f"'{said}'" in f.message


@pytest.mark.parametrize("text", [
    "As a member, I want to renew a loan, so that I can keep the book and I expect no fine.",  # in the ends
    "As a member, I want to know what I expect to pay before I renew.",                        # no second clause
    "As a member, I want the fine I want to pay shown first.",
])
def test_want_or_expect_that_is_not_a_second_clause_is_minimal(text):
    _, findings = lint_texts({"b.txt": text + "\n"})
    assert "ST303" not in {f.code for f in findings}


@pytest.mark.parametrize("text, slip", [
    ("As a member, I want to renew a loan of of a book.", "of of"),
    ("As a member, I want know when my loan ends.", "want know"),
    ("As a member, I want to the list of my loans.", "want to the"),
    ("As a member, I want to must renew my loans on time.", "want to must"),
    ("As a member, I want to be able renew a loan.", "be able renew"),
    ("As a member, I want a reminder, so that know when to return the book.", "so that know"),
    ("As a member, I want to see the books I has borrowed.", "I has"),
])
def test_grammar_slips_are_not_full_sentences(text, slip):
    _, findings = lint_texts({"b.txt": text + "\n"})
    (f,) = [f for f in findings if f.code == "ST404"]
    assert text[f.range.start.character:f.range.end.character] == slip and slip in f.message


@pytest.mark.parametrize("text", [
    "As a member, I want to know that that loan is renewed.",
    "As a member, I want to be able to renew a loan, so that I know when to return it.",
    "As a member, I want access to the list of my loans.",
    "As a member, I want to see what I have borrowed, so that I can plan.",
    "As a member, I want a table of my loans.",
])
def test_grammatical_stories_have_no_slip(text):
    _, findings = lint_texts({"b.txt": text + "\n"})
    assert "ST404" not in {f.code for f in findings}


@pytest.mark.parametrize("means, verb", [
    ("Manage Loan Fees", "manage"), ("be able to handle refunds", "handle"), ("administer branch accounts", "administer"),
    ("maintain all records of the branch", "maintain"),
])
def test_managing_a_whole_area_is_an_epic(means, verb):
    _, findings = lint_texts({"b.txt": f"As a clerk, I want to {means}, so that the branch runs.\n"})
    (f,) = [f for f in findings if f.code == "ST901"]
    assert f"'{verb}' means" in f.message and means.split()[0] in f.message


@pytest.mark.parametrize("means", ["maintain my profile", "control the volume of the reader", "renew a loan",
                                   "see who manages the branch"])
def test_concrete_actions_are_not_epics(means):
    _, findings = lint_texts({"b.txt": f"As a clerk, I want to {means}, so that the branch runs.\n"})
    assert "ST901" not in {f.code for f in findings}


def test_suppressions_and_ignore():
    text = "# storytransformer: ignore ST701\nAs a user, I want fast search.\nAs a user, I want easy login.\n"
    _, findings = lint_texts({"b.txt": text})
    assert [f.range.start.line for f in findings if f.code == "ST701"] == [2]
    _, none = lint_texts({"b.txt": text}, Config(ignore=["ST7"]))
    assert not [f for f in none if f.code == "ST701"]


def test_extend_select_adds_to_the_default_set_or_to_select_and_ignore_still_wins():
    text = "As a user, I want fast search\n"  # ST701 on by default; ST403 (no full stop) off by default
    on = lambda config: {f.code for f in lint_texts({"b.txt": text}, config)[1]}
    assert "ST701" in on(Config()) and "ST403" not in on(Config())
    assert {"ST701", "ST403"} <= on(Config(extend_select=["ST403"]))
    assert on(Config(select=["ST7"], extend_select=["ST40"])) == {"ST701", "ST403"}
    assert "ST403" not in on(Config(extend_select=["ST4"], ignore=["ST403"]))


def test_uniform_only_with_a_dominant_template():
    many = "".join(f"As a user, I want to do thing {i}.\n" for i in range(6))
    _, findings = lint_texts({"b.txt": many + "As user, I'd like to do more.\n"})
    (f,) = [f for f in findings if f.code == "ST501"]
    assert f.range.start.line == 6
    _, few = lint_texts({"b.txt": "As a user, I want to a.\nAs a user, I'd like to b.\n"})
    assert not [f for f in few if f.code == "ST501"]


def test_incremental_update_changes_duplicates():
    ws = Workspace(Config())
    ws.set_text("a.txt", "As a user, I want to log in.\n")
    ws.set_text("b.txt", "As a user, I want to log out.\n")
    linter = Linter(ws, use_disk_cache=False)
    assert not [f for f in linter.check_file("a.txt") if f.code == "ST601"]
    ws.set_text("b.txt", "As a user, I want to log in.\n")
    assert [f.code for f in linter.check_file("a.txt") if f.code == "ST601"] == ["ST601"]
    ws.remove("b.txt")
    assert not [f for f in linter.check_file("a.txt") if f.code == "ST601"]


def test_minimal_repeated_markers_and_extra_sentences():
    text = ("As a user, as a user, I want to log in.\n"
            "As a user, I want to I want to log out.\n"
            "As a user, I want to log in, so that I work. The page must be blue.\n")
    _, findings = lint_texts({"b.txt": text})
    assert "ST303" in codes_on_line(findings, "b.txt", 1)
    assert "ST303" in codes_on_line(findings, "b.txt", 2)
    assert codes_on_line(findings, "b.txt", 3) == {"ST302"}


def test_estimatable_long_and_whole_area():
    long_story = "As a user, I want to " + " ".join(["see item"] * 40) + "."  # 86 words, over max-words (80)
    _, findings = lint_texts({"b.txt": long_story + "\nAs an admin, I want to manage all users.\n"
                              "As an admin, I want to block a user.\n"})
    assert "ST901" in codes_on_line(findings, "b.txt", 1)
    assert "ST901" in codes_on_line(findings, "b.txt", 2)
    assert "ST901" not in codes_on_line(findings, "b.txt", 3)


def test_problem_oriented_needs_solution_words_in_the_means():
    _, findings = lint_texts({"b.txt": "As a user, I want a red button to pay.\n"
                              "As a user, I want to pay, so that the button turns green.\n"})
    assert "ST801" in codes_on_line(findings, "b.txt", 1)
    assert "ST801" not in codes_on_line(findings, "b.txt", 2)


def test_off_by_default_rules_turn_on_when_given_a_severity():
    text = "As a user, I want to log in\n"
    _, findings = lint_texts({"b.txt": text})
    assert not {"ST104", "ST403"} & {f.code for f in findings}
    _, findings = lint_texts({"b.txt": text}, Config(severity={"ST104": "hint", "ST403": "info"}))
    assert {"ST104", "ST403"} <= {f.code for f in findings}


def test_remembered_findings_move_with_their_story():
    ws = Workspace(Config())
    story = "As a member, I want to see my loans (all of them), so that I remember.\n"
    ws.set_text("b.txt", story)
    linter = Linter(ws, use_disk_cache=False)
    (first,) = [f for f in linter.check_file("b.txt") if f.code == "ST301"]
    ws.set_text("b.txt", "As a user, I want to log in.\n\n" + story)
    (moved,) = [f for f in linter.check_file("b.txt") if f.code == "ST301"]
    assert moved.range.start.line == first.range.start.line + 2
    assert moved.range.start.character == first.range.start.character
    assert all(e.range.start.line >= 2 for e in moved.fix.edits)
    fresh = Linter(ws, use_disk_cache=False)
    assert [f for f in fresh.check_file("b.txt") if f.code == "ST301"] == [moved]


@pytest.mark.parametrize("story, flagged", [
    ("As a user, I want to search for books such as novels, so that I find them.", True),
    ("As a user, I want to export loans, e.g. as CSV.", True),
    ("As a user, I want to describe a book, including its title, author and year.", True),
    ("As a user, I want to upload files - though not too many.", True),
    ("As a user, I want to set a reminder: daily or weekly.", True),
    ("As a user, I want to upload my files, including metadata, so that others find them.", False),
    ("As a user, I want to search the catalogue, so that I find books.", False),
    ("As a user: I want to log in.", False),
])
def test_asides_are_not_minimal(story, flagged):
    _, findings = lint_texts({"b.txt": story + "\n"})
    assert ("ST304" in codes_on_line(findings, "b.txt", 1)) is flagged


def test_long_bracketed_text_is_quoted_with_its_closing_bracket():
    story = ("As a user, I want to see old reports (for example historical reports that are still published, "
             "expired ones and drafts) in the archive.")
    _, findings = lint_texts({"b.txt": story + "\n"})
    (found,) = [f for f in findings if f.code == "ST301"]
    assert "the bracketed text (for example historical reports that are still ...) is a note" in found.message


@pytest.mark.parametrize("story, quoted", [
    ("As a visitor, I want a page for each class: title, trainers, room and time, so that I pick one.",
     "': title, trainers, room and ...'"),
    ("As a user, I want to set a reminder: daily or weekly.", "': daily or weekly'"),
    ("As a user, I want to upload files - though not too many, so that I share them.", "'- though not too many'"),
    ("As a user, I want to search for books such as novels, so that I find them.", "'such as'"),
])
def test_an_aside_message_quotes_the_words_a_colon_or_dash_starts(story, quoted):
    _, findings = lint_texts({"b.txt": story + "\n"})
    (found,) = [f for f in findings if f.code == "ST304"]
    assert f"Not minimal: {quoted} adds detail" in found.message
    start, end = found.range.start.character, found.range.end.character
    assert story[start:end] == quoted.strip("'").removesuffix(" ...")


@pytest.mark.parametrize("story, flagged", [
    ("As an organiser, I want a bigger room, so that so many people can join.", False),
    ("As a user, I want to join a waitlist, so that so I get a place.", True),
    ("As a user, I want to join a waitlist, so that, so that I get a place.", True),
    ("As a user, I want to mint DOIs, so that data is cited so that I get credit.", True),
    ("As a user, I want to join a waitlist, so that I get a place.", False),
])
def test_repeated_ends_marker(story, flagged):
    _, findings = lint_texts({"b.txt": story + "\n"})
    assert ("ST303" in codes_on_line(findings, "b.txt", 1)) is flagged


def test_because_and_articles_in_a_so_that_backlog():
    many = "".join(f"As a user, I want to do thing {i}, so that I work.\n" for i in range(6))
    _, findings = lint_texts({"b.txt": many + "As a user, I want to see my items, because I keep them current.\n"
                                             "As user, I want to see my loans, so that I return them.\n"})
    assert "ST501" in codes_on_line(findings, "b.txt", 7)
    assert "ST501" not in codes_on_line(findings, "b.txt", 8)  # a missing article alone is not another template


@pytest.mark.parametrize("story, flagged", [
    ("As a user, I want to identify persons in videos, and receive related information about them.", True),
    ("As a manager, I want to have a method to add and remove people from deposit groups.", True),
    ("As a member, I want to add and edit my reviews.", True),
    ("As a user, I want to search and discover music based on my profile.", False),  # one feature
    ("As a user, I want to update my profile and I expect this to fail when it is invalid.", False),  # a new clause
    ("As an employee, I want to know how brand guidelines are developed and maintained.", False),
])
def test_atomic_actions(story, flagged):
    _, findings = lint_texts({"b.txt": story + "\n"})
    assert ("ST201" in codes_on_line(findings, "b.txt", 1)) is flagged


def test_brackets_that_carry_the_sentence_are_reported_but_not_moved():
    text = ("As a moderator, I want to pick whether the team estimates with {0, 1, 2, 3} or {0, 2, 4, 8}, "
            "so that the team can choose a scale.\nAs a member, I want to see my loans (last two years).\n")
    _, findings = lint_texts({"b.txt": text})
    first = [f for f in findings if f.code == "ST301" and f.range.start.line == 0]
    second = [f for f in findings if f.code == "ST301" and f.range.start.line == 1]
    assert first and all(f.fix is None for f in first)  # moving them out would leave "estimates with or"
    assert second and second[0].fix is not None


def test_aside_and_bracket_findings_are_keyed_by_their_words_not_their_message():
    from dataclasses import replace

    from storytransformer.baseline import message_key

    _, findings = lint_texts({"b.txt": "As a user, I want to export loans (all of them): as CSV or PDF.\n"})
    by_code = {f.code: f for f in findings}
    for code, words in (("ST301", "all of them"), ("ST304", "as csv or pdf")):
        found = by_code[code]
        assert message_key(found) == message_key(replace(found, message="reworded")), code
        assert words in message_key(found), (code, message_key(found))

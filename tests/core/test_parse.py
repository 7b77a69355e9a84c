"""Role, means and ends with exact positions, for every marker variant."""

import pytest

from storytransformer.formats.text import read_text


def one(text):
    (story,) = read_text("b.txt", text).stories
    return story


@pytest.mark.parametrize("line, role, means_marker, means, ends", [
    ("As a user, I want to log in, so that I see my data.", "user", "I want to", "log in", "I see my data"),
    ("As an admin, I'd like to block spam.", "admin", "I'd like to", "block spam", None),
    ("as the editor, i can publish posts in order to inform readers", "editor", "i can", "publish posts", "inform readers"),
    ("As a visitor I need a map so I can find the venue.", "visitor", "I need", "a map", "I can find the venue"),
    ("As a member, I would like to be able to vote, so that my voice counts.", "member", "I would like to", "be able to vote", "my voice counts"),
    ("As a FABS user, I do not want DABS banners, so that I see what matters.", "FABS user", "I do not want", "DABS banners", "I see what matters"),
    ("As an owner, I only want padded fields, so that I can justify padding.", "owner", "I only want", "padded fields", "I can justify padding"),
    ("As a camp worker, I'm able to report a camper to the manager.", "camp worker", "I'm able to", "report a camper to the manager", None),
])
def test_marker_variants(line, role, means_marker, means, ends):
    s = one(line)
    assert s.role.text == role
    assert s.means.marker == means_marker
    assert s.means.text == means
    assert (s.ends.text if s.ends else None) == ends


@pytest.mark.parametrize("line, role, means_marker, means, ends_marker, ends", [
    ("In order to find books, as a member, I want to search the catalogue.", "member", "I want to",
     "search the catalogue", "In order to", "find books"),
    ("To make the catalogue accurate, I, as an administrator, want to be able to add libraries.", "administrator",
     "want to", "be able to add libraries", "To", "make the catalogue accurate"),
    ("So that I can plan, as the organiser, I'd like to see the schedule.", "organiser", "I'd like to",
     "see the schedule", "So that", "I can plan"),
])
def test_ends_first_template(line, role, means_marker, means, ends_marker, ends):
    s = one(line)
    assert (s.role.text, s.means.marker, s.means.text, s.ends.marker, s.ends.text) == \
        (role, means_marker, means, ends_marker, ends)
    for part in s.parts():
        assert line[part.range.start.character:part.range.end.character] == part.text
        assert line[part.marker_range.start.character:part.marker_range.end.character].lower() == part.marker.lower()


@pytest.mark.parametrize("line", [
    "To be sure, as soon as possible, I want an answer.",  # no article: "as soon as" is no role
    "To do: as a user I want things.",  # no comma before the role
    "In order to go live. As a user, I want a plan.",  # the role is in another sentence
    "To ship, as a team of many people who all work on the release and more, I want a plan.",  # a clause, not a role
])
def test_not_ends_first(line):
    s = one(line)
    assert s.ends is None or s.role is None or s.ends.range.start.character > s.role.range.start.character


def test_positions_are_exact_and_utf16_aware():
    line = "US-7: As a 👩‍💻 developer, I want to see “logs”, so that I debug."
    s = one(line)
    assert s.id == "US-7" and s.explicit_id
    assert line[s.range.start.character:s.range.end.character] == s.text
    for part in s.parts():
        assert line[part.range.start.character:part.range.end.character] == part.text
    # The emoji takes 3 code points but 5 UTF-16 code units: columns after it differ.
    prefix = line[: s.means.range.start.character]
    assert s.means.range.start.utf16 == len(prefix.encode("utf-16-le")) // 2
    assert s.means.range.start.utf16 == s.means.range.start.character + 2


def test_extra_sentence_is_trailing_not_means():
    s = one("As a user, I want to log in, so that I see my data. Also add a logo.")
    assert s.ends.text == "I see my data"
    assert s.trailing.text == "Also add a logo"


def test_abbreviation_is_not_a_sentence_break():
    s = one("As a user, I want to filter by type, e.g. PDF or Word, so that I find files.")
    assert s.trailing is None and s.means.text == "filter by type, e.g. PDF or Word"


def test_derived_ids_are_stable_and_distinct_for_duplicates():
    text = "As a user, I want to log in.\nAs a user, I want to log out.\nAs a user, I want to log in.\n"
    a = read_text("dir/backlog.txt", text).stories
    b = read_text("dir/backlog.txt", "As a user, I want to log out.\n" + text).stories
    assert len({s.id for s in a}) == 3
    assert a[0].id == b[1].id  # the id depends on the content, not the line number
    assert a[0].id.startswith("backlog-")


def test_real_backlogs_parse(real_backlogs):
    """Almost every real story has a role and a means; the few that don't are real non-stories."""
    total = missing = 0
    for path in sorted(real_backlogs.glob("*.txt")):
        for s in read_text(str(path), path.read_text("utf-8")).stories:
            total += 1
            missing += s.role is None or s.means is None
    assert total == 1680
    assert missing <= 5

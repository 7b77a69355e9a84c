"""Each reader finds the stories and their exact positions."""

from storytransformer.config import Config
from storytransformer.formats import detect_format, read_source


def test_text_reader_skips_comments_and_reads_suppressions():
    text = ("# backlog\n\n# storytransformer: ignore ST701\nAs a user, I want a fast search.\n"
            "As a user, I want to log in.  # storytransformer: ignore ST104\n")
    src = read_source("b.txt", text)
    assert [s.line for s in src.stories] == [3, 4]
    assert src.stories[0].suppressed == {"ST701"}
    assert src.stories[1].suppressed == {"ST104"}
    assert src.stories[1].text == "As a user, I want to log in."


def test_markdown_list_items_headings_and_criteria():
    text = (
        "# Accounts\n\n"
        "- ACC-1: As a member, I want to reset my password,\n"
        "  so that I can log in again.\n"
        "  - The link expires after one hour.\n"
        "- Not a story, just a note.\n\n"
        "## ACC-2: Family\n\n"
        "As a parent, I want to link cards, so that I pay once.\n\n"
        "Acceptance criteria:\n"
        "- One adult per card.\n"
        "<!-- storytransformer: ignore ST201 -->\n"
        "* [ ] As a member, I want to add and remove holds.\n"
    )
    src = read_source("a.md", text)
    ids = [s.id for s in src.stories]
    assert ids[:2] == ["ACC-1", "ACC-2"]
    first = src.stories[0]
    assert first.range.start.line == 2 and first.range.end.line == 3
    assert first.ends.text == "I can log in again"
    assert first.ends.range.start.line == 3
    assert first.acceptance_criteria == ("The link expires after one hour.",)
    assert src.stories[1].acceptance_criteria == ("One adult per card.",)
    third = src.stories[2]
    assert third.suppressed == {"ST201"} and third.means.text == "add and remove holds"
    line = text.splitlines()[third.line]
    assert line[third.range.start.character:] == third.text


def test_markdown_ignores_code_fences():
    text = "```\nAs a user, I want to be ignored.\n```\n- As a user, I want to be read.\n"
    assert [s.means.text for s in read_source("a.md", text).stories] == ["be read"]


def test_gherkin_narrative_in_any_order_with_tag_id():
    text = (
        "@US-9 @ui\nFeature: Search\n"
        "  In order to find books\n  As a visitor\n  I want to search by title\n\n"
        "  Scenario: By title\n    Given a book\n    When I search\n    Then I see it\n"
    )
    (s,) = read_source("s.feature", text).stories
    assert s.id == "US-9"
    assert s.role.text == "visitor" and s.means.text == "search by title" and s.ends.text == "find books"
    assert s.role.range.start.line == 3 and s.ends.range.start.line == 2
    assert s.range.start.line == 2 and s.range.end.line == 4
    assert s.acceptance_criteria == ("By title",)


def test_gherkin_feature_without_narrative_is_read_as_non_story():
    (s,) = read_source("s.feature", "Feature: Export\n  Exports the data nightly.\n").stories
    assert s.role is None and s.means is None


def test_csv_reader_positions_quotes_and_ids():
    text = ('Issue key,Summary,Acceptance Criteria\n'
            'LIB-1,"As a member, I want to pay ""online"", so that I save time.",Works\n'
            'LIB-2,As a member I want to log in,\n')
    src = read_source("e.csv", text)
    assert [s.id for s in src.stories] == ["LIB-1", "LIB-2"]
    s = src.stories[1]
    line = text.splitlines()[2]
    assert line[s.range.start.character:s.range.end.character] == s.text
    assert src.stories[0].acceptance_criteria == ("Works",)


def test_csv_without_story_column_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="no story column.*'Key'"):
        read_source("e.csv", "Key,Points\nA-1,3\n")


def test_format_detection_by_glob_and_suffix():
    cfg = Config(formats={"backlog/*.md": "text"})
    assert detect_format("backlog/x.md", cfg) == "text"
    assert detect_format("docs/x.md", cfg) == "markdown"
    assert detect_format("x.feature") == "gherkin"


def test_same_bytes_under_other_names_are_parsed_for_each_name(tmp_path):
    """The parse cache keys a file by its name too: the format and the story ids depend on it."""
    from storytransformer.run_cache import ResultCache
    from storytransformer.config import Config
    from storytransformer.workspace import Workspace

    body = "- As a member, I want to renew a loan, so that I keep reading.\n"
    (tmp_path / "a.md").write_text(body)
    (tmp_path / "b.txt").write_text(body)
    config = Config()
    config.root = str(tmp_path)
    for _ in range(2):  # the second run reads the cache the first wrote
        cache = ResultCache(config, root=tmp_path / "cache")
        ws = Workspace(config, cache)
        md, txt = ws.load(str(tmp_path / "a.md")), ws.load(str(tmp_path / "b.txt"))
        cache.save()
        assert md.format == "markdown" and txt.format == "text", (md.format, txt.format)
        assert md.stories[0].id != txt.stories[0].id
        assert md.stories[0].text.startswith("As a member") and txt.stories[0].text.startswith("- As a member")

"""The core state behind the server, in-process: which other files an edit affects, versions kept."""

from __future__ import annotations

from storytransformer_server.lsp.documents import CoreState

from .conftest import MORE, STORIES


def scanned(tmp_path) -> CoreState:
    (tmp_path / "stories.txt").write_text(STORIES, "utf-8")
    (tmp_path / "more.txt").write_text(MORE, "utf-8")
    (tmp_path / "other.txt").write_text("As a member, I want to pay a fine online, so that I can borrow again.\n", "utf-8")
    core = CoreState()
    result = core.scan([str(tmp_path)], {})
    assert result.stories == 7 and result.config_error is None
    return core


def test_an_edit_affects_only_files_that_share_a_changed_story(tmp_path):
    core = scanned(tmp_path)
    stories, more = str(tmp_path / "stories.txt"), str(tmp_path / "more.txt")
    # line 1 has no duplicate anywhere: nobody else is affected
    lines = STORIES.splitlines()
    lines[1] = "As a manager, " + lines[1]
    own, affected = core.update(stories, 2, "\n".join(lines) + "\n")
    assert own.version == 2 and "ST101" not in {f.code for f in own.findings}
    assert affected == []
    # the librarian story (duplicated in more.txt) changes: more.txt is affected, other.txt is not
    lines[2] = lines[2].replace("librarian", "senior librarian")
    own, affected = core.update(stories, 3, "\n".join(lines) + "\n")
    assert affected == [more]
    (after,) = core.check_paths([more])
    assert "ST601" not in {f.code for f in after.findings}


def test_inserting_a_line_moves_stories_and_affects_their_duplicates(tmp_path):
    core = scanned(tmp_path)
    stories, more = str(tmp_path / "stories.txt"), str(tmp_path / "more.txt")
    _, affected = core.update(stories, 2, "\n" + STORIES)  # every story moves down one line
    assert affected == [more]  # its related information points at the moved line


def test_rule_overrides_from_the_editor_apply_on_top_of_the_file(tmp_path):
    core = scanned(tmp_path)
    results = core.reconfigure({"ST101": "off"})
    assert all(f.code != "ST101" for r in results for f in r.findings)
    results = core.reconfigure({})
    assert any(f.code == "ST101" for r in results for f in r.findings)


def test_a_closed_document_goes_back_to_the_disk(tmp_path):
    core = scanned(tmp_path)
    stories = str(tmp_path / "stories.txt")
    core.update(stories, 5, "As a visitor, I want to search the catalogue, so that I can find a book.\n")
    own, _ = core.revert(stories)
    assert own.version is None and "ST101" in {f.code for f in own.findings}
    outside = str(tmp_path.parent / "loose-stories.txt")
    core.update(outside, 1, "Export the report.\n")
    own, _ = core.revert(outside)
    assert own.findings == () and outside not in core.workspace.files


def test_a_document_over_the_size_limit_is_reported_not_parsed(tmp_path):
    core = scanned(tmp_path)
    core.config.max_file_bytes = 1000
    own, _ = core.update(str(tmp_path / "huge.txt"), 1, "As a user, I want to log in.\n" * 100)
    assert own.findings == () and "max_file_bytes" in own.problem
    assert str(tmp_path / "huge.txt") not in core.workspace.files


def test_roles_come_from_the_file_then_its_folder_then_the_project(tmp_path):
    (tmp_path / "shop").mkdir()
    (tmp_path / "museum").mkdir()
    (tmp_path / "shop" / "orders.txt").write_text("As a buyer, I want to pay by card, so that I can check out.\n"
                                                  "As a clerk, I want to refund an order, so that buyers trust us.\n")
    (tmp_path / "shop" / "stock.txt").write_text("As a clerk, I want to count the stock, so that shelves are full.\n")
    (tmp_path / "museum" / "events.txt").write_text(
        "".join(f"As a coordinator, I want to plan event {i}, so that rooms are booked.\n" for i in range(5)))
    core = CoreState()
    core.scan([str(tmp_path)], {})
    assert core.roles(str(tmp_path / "shop" / "orders.txt")) == ["buyer", "clerk", "coordinator"]
    # a new file: its folder's roles before the more frequent ones of another folder
    assert core.roles(str(tmp_path / "shop" / "new.txt")) == ["clerk", "buyer", "coordinator"]

"""The core's editing session: overlays, versions, the incremental template tally, affected files and
the one rule for story files, on real files in a temporary workspace."""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import pytest

from storytransformer.config import Config
from storytransformer.session import EditingSession, TemplateTally, is_story_file

A = (
    "As a visitor, I want to search the catalogue, so that I can find a book.\n"
    "As a member, I want to renew a loan online, so that I avoid a fine.\n"
)
B = (
    "As a librarian, I want to add new titles, so that the catalogue stays current.\n"
    "As a member, I want to renew a loan online, so that I avoid a fine.\n"
)
C = "As a board member, I want to read the monthly report, so that I can plan the budget.\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text(A, "utf-8")
    (tmp_path / "b.txt").write_text(B, "utf-8")
    (tmp_path / "c.txt").write_text(C, "utf-8")
    (tmp_path / "requirements.txt").write_text("numpy==2.0\nrequests\n", "utf-8")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.txt").write_text(A, "utf-8")
    return tmp_path


def load(root: Path) -> EditingSession:
    return EditingSession.load([str(root)], Config(root=str(root)))


def texts(session: EditingSession, path: Path) -> list[str]:
    return [s.text for s in session.workspace.files[str(path)].stories]


def test_load_reads_the_story_files_of_the_walk_at_the_disk_version(root: Path) -> None:
    s = load(root)
    assert sorted(os.path.basename(p) for p in s.workspace.files) == ["a.txt", "b.txt", "c.txt"]
    assert all(s.version(p) is None for p in s.workspace.files)
    assert s.overlays == {}


def test_an_overlay_replaces_the_stories_and_closing_it_goes_back_to_disk(root: Path) -> None:
    s = load(root)
    a = str(root / "a.txt")
    edit = s.set_overlay(a, 3, C)
    assert edit is not None and edit.version == 3 and edit.problem is None
    assert texts(s, root / "a.txt") == [C.strip()]
    assert s.version(a) == 3 and s.overlays[a].text == C
    closed = s.close_overlay(a)
    assert closed is not None and closed.version is None
    assert texts(s, root / "a.txt") == A.strip().splitlines()
    assert s.version(a) is None and a not in s.overlays
    assert s.close_overlay(a) is None  # nothing left to close


def test_a_late_older_version_of_the_same_editor_is_ignored_another_editors_is_not(root: Path) -> None:
    s = load(root)
    a = str(root / "a.txt")
    assert s.set_overlay(a, 5, C, owner=1) is not None
    assert s.set_overlay(a, 4, A, owner=1) is None
    assert texts(s, root / "a.txt") == [C.strip()] and s.version(a) == 5
    assert s.set_overlay(a, 1, B, owner=2) is not None  # another editor's numbering
    assert s.version(a) == 1
    assert s.close_overlay(a, owner=1) is None  # not its overlay any more
    assert s.drop_owner(2) == [a]
    assert texts(s, root / "a.txt") == A.strip().splitlines() and s.overlays == {}


def test_an_unsaved_file_that_is_not_on_disk_leaves_the_workspace_when_closed(root: Path) -> None:
    s = load(root)
    new = str(root / "new.txt")
    s.set_overlay(new, 1, C)
    assert new in s.workspace.files
    edit = s.close_overlay(new)
    assert edit is not None and new not in s.workspace.files and s.version(new) is None


def test_text_that_cannot_be_read_is_a_problem_not_an_exception(root: Path) -> None:
    s = EditingSession.load([str(root)], Config(root=str(root), max_file_bytes=100))
    edit = s.set_overlay(str(root / "a.txt"), 2, A * 10)
    assert edit is not None and edit.problem and "max_file_bytes" in edit.problem
    assert str(root / "a.txt") not in s.workspace.files


def test_an_edit_names_the_files_that_share_a_story_that_appeared_or_vanished(root: Path) -> None:
    s = load(root)
    a, b, c = (str(root / n) for n in ("a.txt", "b.txt", "c.txt"))
    # drop the story a.txt shares with b.txt: b.txt's duplicate finding changes, c.txt's does not
    edit = s.set_overlay(a, 2, A.splitlines()[0] + "\n")
    assert edit.affected == (b,)
    # a story of c.txt typed into a.txt: c.txt is affected
    edit = s.set_overlay(a, 3, A.splitlines()[0] + "\n" + C)
    assert edit.affected == (c,)
    # an edit that changes no shared story affects nobody
    edit = s.set_overlay(a, 4, A.splitlines()[0] + "\n" + C + "\n")
    assert edit.affected == ()


def test_the_tally_updated_edit_by_edit_equals_a_recount(root: Path) -> None:
    rng = random.Random(7)
    s = load(root)
    s.linter  # with a linter, so template changes are followed too
    lines = [
        "As a visitor, I want to search the catalogue, so that I can find a book.",
        "As an admin, I'd like to export the users, so that I can audit them.",
        "As a member I need to pay a fine, so that my account is clear.",
        "I want to print a receipt, so that I have a record.",
        "As a guest, I can browse the events, so that I can plan my week.",
        "As the owner, I want to close the shop at night.",
    ]
    paths = [str(root / f"{n}.txt") for n in ("a", "b", "c", "d")]
    for version in range(1, 60):
        path = rng.choice(paths)
        action = rng.random()
        if action < 0.7:
            s.set_overlay(path, version, "\n".join(rng.sample(lines, rng.randint(0, 4))) + "\n")
        elif path in s.overlays:
            s.close_overlay(path)
        recount = TemplateTally.of(s.workspace)
        assert +s.tally.roles == +recount.roles and +s.tally.means == +recount.means, version
        assert set(s.tally.per_file) == set(s.workspace.files)
    # the linter's template follows whenever the rule's verdict would change
    from storytransformer.session import verdict
    from storytransformer.rules.context import Template

    fresh = Template.of(s.workspace.stories())
    if s.tally.verdict() is not None:
        assert verdict(s.linter.context.template) == verdict(fresh) == s.tally.verdict()


def test_template_moved_when_an_edit_changes_the_dominant_template(tmp_path: Path) -> None:
    many = "".join(f"As a user, I want to open report {i}, so that I can read it.\n" for i in range(6))
    (tmp_path / "a.txt").write_text(many, "utf-8")
    s = load(tmp_path)
    s.linter
    other = "".join(f"As an admin I'd like to close ticket {i}, so that it is done.\n" for i in range(12))
    edit = s.set_overlay(str(tmp_path / "b.txt"), 1, other)
    assert edit.template_moved and edit.affected == (str(tmp_path / "a.txt"),)
    assert s.linter.context.template.means.startswith("i'd like")


def test_is_story_file_cases(root: Path, tmp_path_factory) -> None:
    cfg = Config(root=str(root))
    r = str(root)
    assert is_story_file(str(root / "a.txt"), cfg, r)
    assert not is_story_file(str(root / "requirements.txt"), cfg, r)  # text, but no backlog
    assert not is_story_file(str(root / "node_modules" / "x.txt"), cfg, r)  # excluded directory
    assert not is_story_file(str(root / "image.png"), cfg, r)  # no story format
    assert not is_story_file(str(root.parent / "elsewhere.txt"), cfg, r)  # outside the root
    # the editor's text decides for plain text: requirements.txt becomes a backlog as stories are typed
    assert is_story_file(str(root / "requirements.txt"), cfg, r, text=A, from_disk=False)
    assert not is_story_file(str(root / "notes.txt"), cfg, r, text="remember the milk\n", from_disk=False)
    # a file opened from outside every folder: its format and text decide
    assert is_story_file("/elsewhere/backlog.txt", cfg, None, text=A)
    assert not is_story_file("/elsewhere/notes.txt", cfg, None, text="remember the milk\n")
    assert not is_story_file("/elsewhere/image.png", cfg, None, text=A)
    # a symbolic link out of the root: never read from disk, linted from the editor's text
    outside = tmp_path_factory.mktemp("outside")
    (outside / "linked.txt").write_text(A, "utf-8")
    os.symlink(outside / "linked.txt", root / "linked.txt")
    assert not is_story_file(str(root / "linked.txt"), cfg, r)
    assert is_story_file(str(root / "linked.txt"), cfg, r, text=A, from_disk=False)
    # the session: its own files, and the same rule for others; on_disk only for files a walk reads
    s = load(root)
    assert s.is_story_file(str(root / "a.txt")) and not s.is_story_file(str(root / "requirements.txt"))
    assert s.on_disk(str(root / "a.txt")) and not s.on_disk(str(root / "linked.txt"))
    assert str(root / "linked.txt") not in s.workspace.files


def test_a_rebuilt_session_keeps_the_editors_unsaved_text(root: Path) -> None:
    old = load(root)
    old.set_overlay(str(root / "a.txt"), 7, C, owner=3)
    new = load(root)
    new.adopt_overlays(old)
    assert texts(new, root / "a.txt") == [C.strip()]
    assert new.overlays[str(root / "a.txt")] == dataclasses.replace(old.overlays[str(root / "a.txt")])
    assert new.version(str(root / "a.txt")) == 7

"""Which files are story files: a walk takes plain text files only when they are backlogs."""

from __future__ import annotations

import shutil

from storytransformer.config import Config, from_table
from storytransformer.workspace import Workspace, discover, in_tree, is_backlog, looks_like_backlog

REQUIREMENTS = "# pinned\nrequests==2.31.0\nnumpy==1.26.4\npygls==1.3.1\nrich==13.7.0\nmsgpack==1.0.8\npytest==8.1.1\n"
NOTES = ("Meeting notes 2024-03-04\nAttendees: Ana, Bo, Chris\nAs discussed, the release moves to April.\n"
         "Bo will update the roadmap.\nNext meeting on Friday.\n")
SPRINT = ("As a visitor, I want to search events by date, so that I can plan my weekend.\n"
          "US-2: As an organiser, I want to publish an event, so that visitors can find it.\n"
          "# a comment\n\n"
          "As a admin I want everything to be fast and nice.\n"
          "Refactor the login code.\n")


def tree(tmp_path):
    (tmp_path / "requirements.txt").write_text(REQUIREMENTS)
    (tmp_path / "notes.txt").write_text(NOTES)
    (tmp_path / "sprint.txt").write_text(SPRINT)
    return tmp_path


def names(paths):
    return sorted(p.rsplit("/", 1)[-1] for p in paths)


def test_majority_of_lines_decides():
    assert looks_like_backlog(SPRINT)  # 3 of 4 lines
    assert not looks_like_backlog(REQUIREMENTS) and not looks_like_backlog(NOTES)
    assert looks_like_backlog("As a user, I want to log in.\n")  # a backlog of one story
    assert not looks_like_backlog("As a user, I want to log in.\nTODO\n")  # 50%, but one story
    assert not looks_like_backlog("As a user, I want to log in.\nTODO\nlater\n")
    assert not looks_like_backlog("")
    # only the first 200 lines are looked at
    assert looks_like_backlog("As a user, I want to log in.\n" * 200 + "noise\n" * 1000)
    assert not looks_like_backlog("noise\n" * 200 + "As a user, I want to log in.\n" * 1000)


def test_walk_takes_backlogs_only(tmp_path):
    files, problems = discover([tree(tmp_path)], Config())
    assert names(files) == ["sprint.txt"] and not problems


def test_names_and_explicit_globs_make_a_backlog(tmp_path):
    tree(tmp_path)
    (tmp_path / "team-backlog.txt").write_text("Login\nSearch\n")
    (tmp_path / "q3.stories.txt").write_text("")
    (tmp_path / "reqs").mkdir()
    (tmp_path / "reqs" / "todo.txt").write_text("Login\nSearch\n")
    files, _ = discover([tmp_path], Config())
    assert names(files) == ["q3.stories.txt", "sprint.txt", "team-backlog.txt"]
    cfg = from_table({"include": ["**/*.txt", "reqs/*.txt"], "backlog-names": ["notes.*"]})
    files, _ = discover([tmp_path], cfg)
    assert names(files) == ["notes.txt", "sprint.txt", "todo.txt"]
    files, _ = discover([tmp_path], from_table({"formats": {"requirements.txt": "text"}}))
    assert "requirements.txt" in names(files)
    files, _ = discover([tmp_path], from_table({"detect-backlogs": False}))
    assert len(files) == 6


def test_files_named_explicitly_are_always_checked(tmp_path):
    tree(tmp_path)
    files, _ = discover([tmp_path / "requirements.txt", tmp_path / "notes.txt"], Config())
    assert names(files) == ["notes.txt", "requirements.txt"]
    ws = Workspace(Config())
    ws.set_text(str(tmp_path / "notes.txt"), NOTES)  # in-memory text is never filtered
    assert len(ws.files) == 1


def test_one_rule_for_walks_and_editors(tmp_path):
    root = str(tree(tmp_path))
    cfg = Config()
    assert in_tree(f"{root}/sprint.txt", root, cfg) and not in_tree(f"{root}/requirements.txt", root, cfg)
    # an editor's text wins over the file on disk
    assert in_tree(f"{root}/requirements.txt", root, cfg, resolve=False, text=SPRINT)
    assert not in_tree(f"{root}/sprint.txt", root, cfg, resolve=False, text=NOTES)
    assert is_backlog(f"{root}/README.md", "# Project\n- install it\n", cfg)  # other formats keep their rules


def test_csv_without_a_story_column_is_no_backlog(tmp_path):
    (tmp_path / "data.csv").write_text("x,y\n1,2\n")
    (tmp_path / "jira.csv").write_text("Issue key,Summary\nUS-1,As a user I want to log in\n")
    files, _ = discover([tmp_path], Config())
    assert names(files) == ["jira.csv"]
    files, problems = discover([tmp_path / "data.csv"], Config())
    assert names(files) == ["data.csv"]  # named: read, and its reader says what is wrong


def test_real_backlogs_are_detected(real_backlogs, tmp_path):
    files, _ = discover([real_backlogs], Config())
    assert len(files) == 22
    copy = tmp_path / "copy"
    shutil.copytree(real_backlogs, copy)
    tree(copy)
    files, _ = discover([copy], Config())
    assert len(files) == 23 and "sprint.txt" in names(files)  # the 22, the sprint; no requirements, no notes

"""Ignore a finding for a story or a file, and accept a vague word for the project: code actions against
the real server over stdio, with real files on disk."""

from __future__ import annotations

import ast

import pytest
from lsprotocol import types

from .conftest import apply_edits, open_doc, published_for, replace_all, start, until, uri

VAGUE = ("As a visitor, I want fast search of the catalogue, so that I can find a book.\n"
         "As a member, I want fast renewal of loans, so that I avoid a fine.\n")
# (file name, text, 0-based line of the first story, comment expected above it)
FORMATS = [
    ("stories.txt", VAGUE, 0, "# storytransformer: ignore ST701"),
    ("stories.md", "# Backlog\n\n- " + VAGUE.replace("\nAs", "\n- As"), 2, "<!-- storytransformer: ignore ST701 -->"),
    ("search.feature", "Feature: search\n  " + VAGUE.splitlines()[0] + "\n\n  Scenario: by title\n    Given a book\n",
     1, "# storytransformer: ignore ST701"),
]


def st701_lines(client, u: str, version: int) -> list[int]:
    pubs = published_for(client, u, version)
    return sorted(d.range.start.line for d in pubs[-1].diagnostics if d.code == "ST701") if pubs else None


def command_of(action) -> tuple[str, list]:
    """The command of a code action. lsprotocol's client-side converter reads any ``CodeAction | Command``
    that has a ``command`` key as a Command, turning the nested command object into its repr; undo that."""
    if isinstance(action, types.CodeAction):
        return action.command.command, action.command.arguments
    assert action.arguments is None  # a CodeAction misread as a Command: its command is a repr'd object
    inner = ast.literal_eval(action.command)
    return inner["command"], inner["arguments"]


async def actions_at(client, u: str, line: int) -> list[types.CodeAction]:
    result = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=u),
        range=types.Range(types.Position(line, 0), types.Position(line, 0)),
        context=types.CodeActionContext(diagnostics=[])))
    return list(result or [])


def only_edit(action: types.CodeAction, u: str, version: int) -> list[types.TextEdit]:
    (change,) = action.edit.document_changes
    assert change.text_document.uri == u and change.text_document.version == version
    return change.edits


@pytest.mark.parametrize("name, text, line, expected", FORMATS, ids=["text", "markdown", "gherkin"])
async def test_ignore_for_this_story_inserts_the_format_s_comment_and_silences_it(client, tmp_path, name, text,
                                                                                  line, expected):
    path = tmp_path / name
    path.write_text(text, "utf-8")
    await start(client, tmp_path)
    u = open_doc(client, path)
    await until(lambda: st701_lines(client, u, 1), what="ST701 on the story")
    assert line in st701_lines(client, u, 1)
    titles = [a.title for a in await actions_at(client, u, line)]
    assert "Ignore ST701 for this story" in titles and "Ignore ST701 in this file" in titles
    assert "Accept 'fast' in this project" in titles
    action = next(a for a in await actions_at(client, u, line) if a.title == "Ignore ST701 for this story")
    new_text = apply_edits(text, only_edit(action, u, 1))
    inserted = [ln for ln in new_text.splitlines() if "storytransformer:" in ln]
    assert [ln.strip() for ln in inserted] == [expected]
    replace_all(client, u, 2, new_text)
    lines = await until(lambda: st701_lines(client, u, 2) is not None and [st701_lines(client, u, 2)],
                        what="diagnostics of version 2")
    assert line + 1 not in lines[0]  # the story moved one line down and is silent
    if name != "search.feature":  # the other story still has its finding
        assert lines[0]


@pytest.mark.parametrize("name, text, expected", [(n, t, e.replace("ignore", "ignore-file")) for n, t, _, e in FORMATS],
                         ids=["text", "markdown", "gherkin"])
async def test_ignore_in_this_file_silences_every_story_of_the_file(client, tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text, "utf-8")
    await start(client, tmp_path)
    u = open_doc(client, path)
    await until(lambda: st701_lines(client, u, 1), what="ST701")
    line = st701_lines(client, u, 1)[-1]
    action = next(a for a in await actions_at(client, u, line) if a.title == "Ignore ST701 in this file")
    new_text = apply_edits(text, only_edit(action, u, 1))
    assert new_text.splitlines()[0] == expected
    replace_all(client, u, 2, new_text)
    await until(lambda: st701_lines(client, u, 2) == [], what="no ST701 left")


PYPROJECT = """\
[project]
name = "library"   # the project's own settings stay as they are

# lint settings
[tool.storytransformer]
max-words = 60     # long stories are fine here
"""


async def test_accept_word_writes_the_project_file_atomically_and_rechecks(client, tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, "utf-8")
    path = tmp_path / "stories.txt"
    path.write_text(VAGUE + "As a visitor, I want easy login, so that I can see my loans.\n", "utf-8")
    await start(client, tmp_path)
    u = open_doc(client, path)
    await until(lambda: st701_lines(client, u, 1) == [0, 1, 2], what="three vague terms")
    action = next(a for a in await actions_at(client, u, 0) if a.title == "Accept 'fast' in this project")
    command, arguments = command_of(action)
    assert command == "storytransformer.acceptWord" and arguments == [{"uri": u, "word": "fast"}]
    before = len(published_for(client, u, 1))
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=command, arguments=arguments))
    assert result["written"] is True
    text = (tmp_path / "pyproject.toml").read_text("utf-8")
    assert text.startswith(PYPROJECT.rstrip("\n"))  # formatting and comments kept
    assert 'accepted-words = ["fast"]' in text
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git", "pyproject.toml", "stories.txt"]  # no temp file left
    # the configuration is reloaded and the open document re-published: only 'easy' is left
    await until(lambda: len(published_for(client, u, 1)) > before and st701_lines(client, u, 1) == [2],
                what="diagnostics without 'fast'")
    # accepting it again changes nothing
    again = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=command, arguments=arguments))
    assert again["written"] is False and (tmp_path / "pyproject.toml").read_text("utf-8") == text


async def test_accept_word_refuses_a_config_file_with_unsaved_changes(client, tmp_path):
    (tmp_path / ".git").mkdir()
    config = tmp_path / ".storytransformer.toml"
    config.write_text("max-words = 60\n", "utf-8")
    path = tmp_path / "stories.txt"
    path.write_text(VAGUE, "utf-8")
    await start(client, tmp_path)
    u = open_doc(client, path)
    await until(lambda: st701_lines(client, u, 1), what="ST701")
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri(config), language_id="toml", version=1, text="max-words = 70\n")))
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="storytransformer.acceptWord", arguments=[{"uri": u, "word": "fast"}]))
    assert result["written"] is False and "unsaved changes" in result["reason"]
    assert config.read_text("utf-8") == "max-words = 60\n"
    await until(lambda: [m for m in client.messages if "not accepted" in m.message and ".storytransformer.toml"
                         in m.message], what="a message naming the file")

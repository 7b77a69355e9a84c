"""``storytransformer.mergeStories`` across two documents, and its confirmation.

The model is replaced by a fixed answer (the merge itself is the engine's tests' job); the
server object, its core and its command are the real ones. Reported: with references in two
documents, the replacement went to the first document with the second one's range, and the
merge was applied without showing the merged story.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pygls.workspace import Workspace

from storytransformer_server.lsp.commands import APPLY, MERGE
from storytransformer_server.lsp.protocol import StoryWorkspace
from storytransformer_server.lsp.server import create_server

from .conftest import uri

MERGED = "As a member, I want to renew a loan and pay fines online, so that I avoid a fine and my account is clear."


class Recorder:
    def __init__(self, answer: str | None):
        self.answer = answer
        self.proposals = [MERGED]
        self.messages: list[str] = []
        self.shown: list[str] = []
        self.applied: list[types.WorkspaceEdit] = []


@pytest.fixture
def merge_server(tmp_path: Path):
    (tmp_path / "a.txt").write_text("As a member, I want to renew a loan online, so that I avoid a fine.\n"
                                    "\n"
                                    "As a visitor, I want to search the catalogue, so that I find a book.\n", "utf-8")
    (tmp_path / "b.txt").write_text("As a librarian, I want to add new titles, so that the catalogue is current.\n"
                                    "As a member, I want to pay fines online, so that my account is clear.\n", "utf-8")
    server = create_server()
    ws = Workspace(uri(tmp_path), types.TextDocumentSyncKind.Incremental)
    ws.__class__ = StoryWorkspace
    server.protocol._workspace = ws
    server.core.scan([str(tmp_path)], {}, True)

    def setup(answer: str | None) -> Recorder:
        rec = Recorder(answer)

        async def propose(method, params, paths):
            assert method == "propose/merge"
            return list(rec.proposals)

        async def ask(params: types.ShowMessageRequestParams):
            rec.shown.append(params.message)
            return None if rec.answer is None else types.MessageActionItem(title=rec.answer)

        async def apply(params: types.ApplyWorkspaceEditParams):
            rec.applied.append(params.edit)
            return types.ApplyWorkspaceEditResult(applied=True)

        server.propose = propose
        server.window_show_message_request_async = ask
        server.workspace_apply_edit_async = apply
        server.show = lambda message, kind=None: rec.messages.append(message)
        return rec

    yield server, setup, tmp_path
    server.core.shutdown()


async def run_merge(server, *refs):
    return await server.protocol.fm.commands[MERGE](*refs)


async def test_each_edit_goes_to_the_document_of_its_story(merge_server):
    server, setup, root = merge_server
    rec = setup(APPLY)
    a, b = uri(root / "a.txt"), uri(root / "b.txt")
    # The first reference is a blank line (no story): the story kept is b.txt's, not a.txt's.
    result = await run_merge(server, [{"uri": a, "line": 1}, {"uri": b, "line": 1}, {"uri": a, "line": 0}])
    assert result["applied"] and result["text"] == MERGED
    (edit,) = rec.applied
    by_uri = {c.text_document.uri: c.edits for c in edit.document_changes}
    assert set(by_uri) == {a, b}
    (replace,) = by_uri[b]
    assert replace.new_text == MERGED and replace.range.start.line == 1 and replace.range.end.line == 1
    (delete,) = by_uri[a]
    assert delete.new_text == "" and (delete.range.start.line, delete.range.end.line) == (0, 1)


async def test_the_merged_story_is_shown_before_anything_is_applied(merge_server):
    server, setup, root = merge_server
    a, b = uri(root / "a.txt"), uri(root / "b.txt")
    rec = setup("Cancel")
    result = await run_merge(server, [{"uri": a, "line": 0}, {"uri": b, "line": 1}])
    assert not result["applied"] and result["reason"] == "not confirmed"
    assert rec.applied == [] and MERGED in rec.shown[0]
    rec = setup(None)  # the message dismissed
    assert not (await run_merge(server, [{"uri": a, "line": 0}, {"uri": b, "line": 1}]))["applied"]
    assert rec.applied == []


async def test_a_merge_that_drops_an_ends_is_refused_naming_it(merge_server):
    server, setup, root = merge_server
    a, b = uri(root / "a.txt"), uri(root / "b.txt")
    rec = setup(APPLY)
    rec.proposals = ["As a member, I want to renew a loan and pay fines online, so that my account is clear."]
    result = await run_merge(server, [{"uri": a, "line": 0}, {"uri": b, "line": 1}])
    assert not result["applied"] and "'avoid'" in result["reason"] and "ends" in result["reason"]
    assert rec.applied == [] and rec.shown == []  # never offered to the user
    assert any("refused" in m and "'avoid'" in m for m in rec.messages)
    # a later proposal that keeps every need is the one offered
    rec.proposals.append(MERGED)
    result = await run_merge(server, [{"uri": a, "line": 0}, {"uri": b, "line": 1}])
    assert result["applied"] and result["text"] == MERGED

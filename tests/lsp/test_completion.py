"""textDocument/completion for clients without inline completion, against the real server over stdio."""

from __future__ import annotations

from lsprotocol import types

from .conftest import change, open_doc, start, until

SAME_FILE = ("As a curator, I want to tag an exhibit, so that visitors find it.\n"
             "As a curator, I want to retire an exhibit, so that the list stays current.\n"
             "\n")
ELSEWHERE = "".join(f"As a coordinator, I want to plan event {i}, so that rooms are booked.\n" for i in range(4))


async def complete(client, u: str, line: int, character: int):
    return await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=u), position=types.Position(line, character)))


def edits(result) -> list[str]:
    items = result.items if isinstance(result, types.CompletionList) else result or []
    return [i.text_edit.new_text for i in sorted(items, key=lambda i: i.sort_text)]


async def test_completion_offers_roles_of_the_file_first_then_markers(client, tmp_path):
    (tmp_path / "events.txt").write_text(ELSEWHERE, "utf-8")
    path = tmp_path / "museum.txt"
    path.write_text(SAME_FILE, "utf-8")
    init = await start(client, tmp_path)
    assert init.capabilities.completion_provider is not None
    assert " " in init.capabilities.completion_provider.trigger_characters
    u = open_doc(client, path)
    await until(lambda: u in client.diagnostics, what="diagnostics")

    change(client, u, 2, 2, 0, 0, "As a c")
    result = await complete(client, u, 2, 6)
    # the file's own role first although 'coordinator' is more frequent in the folder
    assert edits(result)[:2] == ["curator, I want to ", "coordinator, I want to "]
    item = sorted(result.items, key=lambda i: i.sort_text)[0]
    assert item.label == "curator" and item.text_edit.range == types.Range(types.Position(2, 5), types.Position(2, 6))

    change(client, u, 3, 2, 6, 6, "urator,")
    assert edits(await complete(client, u, 2, 13)) == [" I want to "]
    text = " I want to tag a room"
    change(client, u, 4, 2, 13, 13, text)
    assert edits(await complete(client, u, 2, 13 + len(text))) == [", so that "]
    # nothing to offer in the middle of an existing story
    assert edits(await complete(client, u, 0, 10)) == []

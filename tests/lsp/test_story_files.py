"""Plain text files that are no backlogs (requirements.txt, meeting notes) get no diagnostics."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from .conftest import open_doc, published_for, replace_all, scanned, start, until, uri

REQUIREMENTS = "requests==2.31.0\nnumpy==1.26.4\npygls==1.3.1\nrich==13.7.0\nmsgpack==1.0.8\npytest==8.1.1\n"
NOTES = "Meeting notes\nAttendees: Ana, Bo, Chris\nAs discussed, the release moves to April.\n"
SPRINT = ("As a visitor, I want to search events by date, so that I can plan my weekend.\n"
          "As an organiser, I want to publish an event, so that visitors can find it.\n"
          "Refactor the login code.\n")


def tree(tmp_path):
    (tmp_path / "requirements.txt").write_text(REQUIREMENTS)
    (tmp_path / "notes.txt").write_text(NOTES)
    (tmp_path / "sprint.txt").write_text(SPRINT)
    return tmp_path


async def test_only_backlogs_get_diagnostics(client, tmp_path):
    root = tree(tmp_path)
    await start(client, root, options={"debounceMs": 0})
    sprint, reqs, notes = uri(root / "sprint.txt"), uri(root / "requirements.txt"), uri(root / "notes.txt")
    await until(lambda: sprint in client.diagnostics, what="the backlog's diagnostics")
    await scanned(client)
    assert any(d.code == "ST103" for d in client.diagnostics[sprint])
    open_doc(client, root / "requirements.txt")
    open_doc(client, root / "notes.txt")
    open_doc(client, root / "sprint.txt")
    await until(lambda: published_for(client, sprint, 1), what="the open backlog's diagnostics")
    await asyncio.sleep(0.5)
    assert not published_for(client, reqs) and not published_for(client, notes)
    # stories typed into the notes make them a backlog: now they are linted
    replace_all(client, notes, 2, SPRINT.replace("visitor", "guest"))
    pub = await until(lambda: published_for(client, notes, 2), what="the notes, now a backlog")
    assert any(d.code == "ST103" for d in pub[-1].diagnostics)


async def test_pulled_diagnostics_of_a_non_backlog_are_empty(client, tmp_path):
    root = tree(tmp_path)
    await start(client, root, pull=True)
    await scanned(client)
    for name, empty in (("requirements.txt", True), ("sprint.txt", False)):
        u = open_doc(client, root / name)
        report = await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
            text_document=types.TextDocumentIdentifier(uri=u)))
        assert (len(report.items) == 0) == empty, name

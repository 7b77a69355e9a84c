"""Diagnostics over a real stdio connection: on open, on change, for the workspace, pushed and pulled."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from .conftest import STORIES, change, codes, open_doc, published_for, replace_all, scanned, start, until, uri


async def test_workspace_scan_publishes_every_story_file(client, workspace):
    result = await start(client, workspace)
    assert result.capabilities.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    more, stories = uri(workspace / "more.txt"), uri(workspace / "stories.txt")
    await until(lambda: more in client.diagnostics and stories in client.diagnostics, what="scan diagnostics")
    diags = client.diagnostics[stories]
    assert codes(diags, 1) == ["ST101", "ST501"]  # no role; and not uniform: the other stories start "As a ..."
    assert "ST301" in codes(diags, 2)  # bracketed note
    d = next(d for d in diags if d.code == "ST101")
    assert d.source == "storytransformer"
    assert d.code_description and "st101" in d.code_description.href
    assert d.range.start.character == 0 and d.range.end.character == len(STORIES.splitlines()[1])
    # progress for the scan: begin, reports with percentages, end
    await scanned(client)
    (reports,) = [vs for vs in client.progress_reports.values() if vs and vs[0].message == "reading the workspace"]
    assert any(isinstance(v, types.WorkDoneProgressReport) and v.percentage == 100 for v in reports)


async def test_duplicate_across_files_carries_related_information(client, workspace):
    await start(client, workspace)
    more = uri(workspace / "more.txt")
    await until(lambda: more in client.diagnostics, what="more.txt diagnostics")
    dup = next(d for d in client.diagnostics[more] if d.code == "ST601")
    assert dup.range.start.line == 1
    (rel,) = dup.related_information
    assert rel.location.uri == uri(workspace / "stories.txt")
    assert rel.location.range.start.line == 2


async def test_open_and_change_update_diagnostics_and_the_other_file(client, workspace):
    await start(client, workspace, options={"debounceMs": 20})
    stories, more = uri(workspace / "stories.txt"), uri(workspace / "more.txt")
    await until(lambda: more in client.diagnostics, what="scan")
    open_doc(client, workspace / "stories.txt")
    await until(lambda: published_for(client, stories, 1), what="diagnostics for version 1")
    # give line 2 a role: ST101 goes away
    change(client, stories, 2, 1, 0, 0, "As a manager, ")
    pub = await until(lambda: published_for(client, stories, 2), what="diagnostics for version 2")
    assert "ST101" not in codes(pub[-1].diagnostics)
    # edit the librarian story: more.txt's duplicate finding must disappear without touching more.txt
    assert "ST601" in codes(client.diagnostics[more])
    change(client, stories, 3, 2, 2, 2, "senior ")  # "As a senior librarian, ..."
    await until(lambda: "ST601" not in codes(client.diagnostics[more]), what="more.txt re-published")
    assert "ST301" in codes(client.diagnostics[more])


async def test_results_for_old_versions_are_never_published(client, workspace):
    await start(client, workspace, options={"debounceMs": 0})
    stories = uri(workspace / "stories.txt")
    open_doc(client, workspace / "stories.txt")
    await until(lambda: published_for(client, stories, 1), what="version 1")
    texts = {1: STORIES}
    # a burst of edits: each version alternately has and lacks a role on line 2
    for v in range(2, 30):
        line2 = ("As a manager, " if v % 2 else "") + "I want to export the monthly report."
        text = STORIES.splitlines()
        text[1] = line2
        texts[v] = "\n".join(text) + "\n"
        replace_all(client, stories, v, texts[v])
    await until(lambda: published_for(client, stories, 29), what="the last version")
    await asyncio.sleep(0.3)
    for p in published_for(client, stories):
        assert p.version in texts
        has_role = texts[p.version].splitlines()[1].startswith("As a")
        assert ("ST101" in codes(p.diagnostics, 1)) == (not has_role), f"version {p.version} published with another text's findings"
    assert client.published[-1].version == 29 if client.published[-1].uri == stories else True
    last = published_for(client, stories)[-1]
    assert last.version == 29


async def test_pull_diagnostics_with_result_ids(client, workspace):
    result = await start(client, workspace, pull=True, refresh=True)
    provider = result.capabilities.diagnostic_provider
    assert provider and provider.workspace_diagnostics and provider.inter_file_dependencies
    await scanned(client)
    stories = uri(workspace / "stories.txt")
    open_doc(client, workspace / "stories.txt")
    report = await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
        text_document=types.TextDocumentIdentifier(uri=stories)))
    assert report.kind == "full" and "ST101" in codes(report.items)
    again = await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
        text_document=types.TextDocumentIdentifier(uri=stories), previous_result_id=report.result_id))
    assert again.kind == "unchanged" and again.result_id == report.result_id
    change(client, stories, 2, 1, 0, 0, "As a manager, ")
    fresh = await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
        text_document=types.TextDocumentIdentifier(uri=stories), previous_result_id=report.result_id))
    assert fresh.kind == "full" and fresh.result_id != report.result_id and "ST101" not in codes(fresh.items)
    # pull clients get nothing pushed
    assert not client.published

    ws = await client.workspace_diagnostic_async(types.WorkspaceDiagnosticParams(previous_result_ids=[
        types.PreviousResultId(uri=stories, value=fresh.result_id)]))
    by_uri = {item.uri: item for item in ws.items}
    assert by_uri[stories].kind == "unchanged"
    more = by_uri[uri(workspace / "more.txt")]
    assert more.kind == "full" and "ST601" in codes(more.items)


async def test_close_reverts_to_the_file_on_disk(client, workspace):
    await start(client, workspace, options={"debounceMs": 0})
    stories = uri(workspace / "stories.txt")
    open_doc(client, workspace / "stories.txt", text="As a manager, I want to export the monthly report.\n")
    pub = await until(lambda: published_for(client, stories, 1), what="open")
    assert "ST101" not in codes(pub[-1].diagnostics)
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=stories)))
    await until(lambda: any(p.version is None and "ST101" in codes(p.diagnostics)
                            for p in published_for(client, stories)[1:]), what="disk diagnostics after close")


async def test_diagnostics_for_a_real_backlog(client, real_backlogs, tmp_path):
    from storytransformer.rules import RULES

    source = sorted(real_backlogs.glob("*.txt"))[1]
    target = tmp_path / source.name
    target.write_bytes(source.read_bytes())  # a temporary copy: the workspace is this one file
    await start(client, tmp_path)
    u = open_doc(client, target)
    pub = await until(lambda: published_for(client, u, 1), timeout=60, what="diagnostics for a real backlog")
    diags = pub[-1].diagnostics
    lines = target.read_text("utf-8").splitlines()
    assert diags and all(d.code in RULES and d.source == "storytransformer" for d in diags)
    for d in diags:
        assert d.range.start.line < len(lines) and d.range.end.character <= len(lines[d.range.end.line]) + 1

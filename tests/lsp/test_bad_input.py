"""Bad input never stops the server: malformed JSON-RPC, unknown methods and documents, invalid
ranges, huge documents; and ``$/cancelRequest`` stops model work in flight."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcMethodNotFound, JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient

from .conftest import SERVER_ENV, change, change_range, codes, make_client, open_doc, published_for, start, until, uri

HUNG_RUNTIME = tempfile.mkdtemp(prefix="st-lsp-hung-")
HUNG = ClientServerConfig(server_command=[sys.executable, "-m", "storytransformer", "lsp"], client_factory=make_client,
                          server_env={**SERVER_ENV, "XDG_RUNTIME_DIR": HUNG_RUNTIME})


async def alive(client: LanguageClient, workspace) -> None:
    """The server still answers a request."""
    reply = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="storytransformer.engineStatus"))
    assert reply["state"] in ("unavailable", "loading", "ready")


async def test_malformed_json_rpc_and_unknown_methods(client, workspace):
    await start(client, workspace)
    stdin = client._server.stdin
    stdin.write(b"Content-Length: 9\r\n\r\n{not json")
    stdin.write(b'Content-Length: 27\r\n\r\n{"jsonrpc":"2.0","id":true}')
    await stdin.drain()
    with pytest.raises(JsonRpcMethodNotFound):
        await client.protocol.send_request_async("storytransformer/noSuchMethod", {})
    await alive(client, workspace)


async def test_requests_for_documents_that_are_not_open_or_not_stories(client, workspace):
    await start(client, workspace, pull=True, inline=True)
    ghost = uri(workspace / "ghost.txt")
    rng = types.Range(types.Position(0, 0), types.Position(0, 0))
    assert await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=ghost), range=rng,
        context=types.CodeActionContext(diagnostics=[]))) is None
    assert await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=ghost), position=types.Position(3, 3),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))) is None
    report = await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
        text_document=types.TextDocumentIdentifier(uri="untitled:Untitled-1")))
    assert list(report.items) == []
    # a change and a close for documents never opened, a Python file opened
    change(client, ghost, 5, 0, 0, 0, "x")
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=ghost)))
    (workspace / "tool.py").write_text("print('As a user')\n", "utf-8")
    open_doc(client, workspace / "tool.py")
    await alive(client, workspace)
    assert uri(workspace / "tool.py") not in client.diagnostics


async def test_invalid_ranges_are_ignored_and_positions_clamped(client, workspace):
    await start(client, workspace, options={"debounceMs": 0})
    u = open_doc(client, workspace / "stories.txt")
    await until(lambda: published_for(client, u, 1), what="version 1")
    change_range(client, u, 2, (1, 10), (1, 2), "XX")  # end before start: ignored
    change_range(client, u, 3, (99, 0), (99, 0), "As a ghost, I want to haunt, so that I scare.\n")  # past the end
    change(client, u, 4, 1, 0, 0, "As a manager, ")
    pub = await until(lambda: published_for(client, u, 4), what="version 4")
    diags = pub[-1].diagnostics
    assert "ST101" not in codes(diags, 1)
    assert all(d.range.start.line < 6 for d in diags)
    await alive(client, workspace)


async def test_huge_document_and_huge_line(client, workspace):
    # maxStories raised: this checks every story (the default, 2,000, is tested in test_data_safety.py)
    await start(client, workspace, options={"debounceMs": 0, "maxStories": 10_000})
    lines = [f"As a user {i}, I want to see report {i}, so that I know item {i}." for i in range(5000)]
    lines.append("As a user, I want " + "very " * 20000 + "long things.")
    big = workspace / "big.txt"
    big.write_text("\n".join(lines) + "\n", "utf-8")
    u = open_doc(client, big)
    pub = await until(lambda: published_for(client, u, 1), timeout=60, what="diagnostics for a huge document")
    assert any(d.range.start.line == 5000 for d in pub[-1].diagnostics)  # the epic-sized line
    await alive(client, workspace)


@pytest_lsp.fixture(config=HUNG)
async def hung_client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def test_cancel_request_stops_model_work_in_flight(hung_client, workspace):
    """A daemon socket that accepts and never answers: the model request hangs until the client cancels it."""
    sock_dir = os.path.join(HUNG_RUNTIME, "storytransformer")
    os.makedirs(sock_dir, mode=0o700, exist_ok=True)
    accepted = []

    async def never_answer(reader, writer):
        accepted.append(writer)
        await reader.read()

    server = await asyncio.start_unix_server(never_answer, os.path.join(sock_dir, "daemon.sock"))
    try:
        await start(hung_client, workspace, options={"daemon": {"spawn": False, "timeoutS": 60}})
        u = open_doc(hung_client, workspace / "stories.txt")
        actions = await hung_client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=u),
            range=types.Range(types.Position(2, 0), types.Position(2, 0)),
            context=types.CodeActionContext(diagnostics=[], only=[types.CodeActionKind.RefactorRewrite])))
        (rewrite,) = actions
        pending = asyncio.ensure_future(
            hung_client.protocol.send_request_async(types.CODE_ACTION_RESOLVE, rewrite, msg_id="rewrite-1"))
        await until(lambda: len(accepted) >= 1, what="the server connecting to the daemon socket")
        await asyncio.sleep(0.3)  # let the request reach the server before the cancel
        hung_client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="rewrite-1"))
        with pytest.raises(JsonRpcRequestCancelled):
            await asyncio.wait_for(pending, 3)
        await alive(hung_client, workspace)
    finally:
        server.close()


async def test_stray_output_on_stdout_cannot_corrupt_the_stream(client, workspace):
    """A rule or library that prints must not break the protocol: stdout is kept for LSP only."""
    await start(client, workspace)
    reply = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="storytransformer.engineStatus"))
    assert reply["state"]
    # the server process's fd 1 is its stderr; the protocol runs on a duplicate
    pid = client._server.pid
    assert os.readlink(f"/proc/{pid}/fd/1") == os.readlink(f"/proc/{pid}/fd/2")

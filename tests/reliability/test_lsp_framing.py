"""The language server's stdio framing under abuse, against the real server over raw pipes.

Each bad message is followed by a valid request, which must be answered: a huge
``Content-Length`` used to kill the server (MemoryError), a lower-case header,
LF-only headers, or a length that does not match the body used to leave it deaf.
Also: requests before ``initialize``, and ``$/cancelRequest`` with an object id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def env_for(root: Path) -> dict:
    (root / ".rt").mkdir(mode=0o700, exist_ok=True)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "XDG_RUNTIME_DIR": str(root / ".rt"),
            "STORYTRANSFORMER_RUNTIME_DIR": str(root / ".rt"), "STORYTRANSFORMER_CACHE_DIR": str(root / ".cache"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])}


def command(log: Path) -> list[str]:
    return [sys.executable, "-m", "storytransformer", "lsp", "--log-file", str(log), "--log-level", "INFO"]


@pytest.fixture
def server(soak, tmp_path):
    """A real server, initialized, with its log in a file."""
    log = tmp_path / "server.log"
    lsp = soak.RawLsp(command(log), env_for(tmp_path), str(tmp_path))
    lsp.log = log
    lsp.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {},
                               "initializationOptions": {"semantic": False, "daemon": {"enabled": False}}})
    lsp.notify("initialized", {})
    yield lsp
    lsp.close()


def raw(lsp, data: bytes) -> None:
    with lsp._wlock:
        lsp.proc.stdin.write(data)
        lsp.proc.stdin.flush()


def body(rid: int, method: str = "workspace/executeCommand", params: dict | None = None) -> bytes:
    params = {"command": "storytransformer.engineStatus"} if params is None else params
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}).encode()


def answered(lsp, rid: int, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    with lsp._cond:
        while rid not in lsp.responses:
            assert time.monotonic() < deadline, f"request {rid} was not answered (server exit {lsp.proc.poll()})"
            lsp._cond.wait(0.2)
        return lsp.responses.pop(rid)


def frame(data: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(data) + data


def test_a_huge_content_length_is_refused_and_the_server_keeps_serving(server):
    raw(server, b"Content-Length: 100000000000\r\n\r\n" + frame(body(9001)))
    assert "result" in answered(server, 9001)
    raw(server, b"Content-Length: 99999999999999999999999999\r\n\r\n{}" + frame(body(9002)))
    assert "result" in answered(server, 9002)
    assert server.proc.poll() is None
    assert "larger than the" in server.log.read_text()


def test_lower_case_and_lf_only_headers_are_accepted(server):
    b = body(9101)
    raw(server, b"content-length: %d\r\n\r\n" % len(b) + b)
    assert "result" in answered(server, 9101)
    b = body(9102)
    raw(server, b"Content-Length: %d\n\n" % len(b) + b)
    assert "result" in answered(server, 9102)
    b = body(9103)
    raw(server, b"CONTENT-LENGTH:%d\nContent-Type: application/vscode-jsonrpc; charset=utf-8\n\n" % len(b) + b)
    assert "result" in answered(server, 9103)


def test_a_length_shorter_than_the_body_costs_only_that_message(server):
    raw(server, b"content-length: 2\r\n\r\n" + body(9201) + frame(body(9202)))
    assert "result" in answered(server, 9202)
    assert server.alive()


def test_a_length_longer_than_the_body_does_not_swallow_the_next_message(server):
    raw(server, b"Content-Length: 5000\r\n\r\n" + body(9301) + frame(body(9302)))
    assert "result" in answered(server, 9302)
    assert "result" in answered(server, 9301)  # complete JSON before the next header: handled
    raw(server, b"Content-Length: 60\r\n\r\n" + b'{"jsonrpc": "2.0", "method": "x"}' + frame(body(9303)))
    assert "result" in answered(server, 9303)


def test_garbage_between_messages_is_skipped(server):
    raw(server, b"\r\nhello\r\nX-Whatever: 1\r\n" + frame(body(9401)))
    assert "result" in answered(server, 9401)


def test_a_truncated_body_at_end_of_input_ends_cleanly(tmp_path):
    log = tmp_path / "server.log"
    proc = subprocess.Popen(command(log), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env_for(tmp_path), cwd=str(tmp_path))
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"capabilities": {}, "initializationOptions": {"daemon": {"enabled": False}}}}).encode()
    out, err = proc.communicate(frame(init) + b'Content-Length: 400\r\n\r\n{"jsonrpc": "2.0", "id": 2, "met',
                                timeout=60)
    assert proc.returncode == 0
    assert b'"id": 1' in out or b'"id":1' in out  # initialize was answered before the end
    text = log.read_text() + err.decode(errors="replace")
    assert "Traceback" not in text
    assert "input ended" in text


def test_execute_command_before_initialize_is_server_not_initialized(soak, tmp_path):
    log = tmp_path / "server.log"
    lsp = soak.RawLsp(command(log), env_for(tmp_path), str(tmp_path))
    try:
        reply = lsp.request("workspace/executeCommand", {"command": "storytransformer.engineStatus"}, timeout=30)
        assert reply["error"]["code"] == -32002
        lsp.notify("textDocument/didOpen", {"textDocument": {"uri": (tmp_path / "a.txt").as_uri(),
                                                             "languageId": "plaintext", "version": 1, "text": "x"}})
        reply = lsp.request("initialize", {"capabilities": {}, "initializationOptions": {"daemon": {"enabled": False}}})
        assert "result" in reply
        assert "AttributeError" not in log.read_text()
    finally:
        lsp.close()


def test_cancel_request_with_an_object_id_is_ignored_with_one_warning(server):
    for _ in range(3):
        server.notify("$/cancelRequest", {"id": {"nested": [1, 2]}})
    assert server.alive()
    text = server.log.read_text()
    assert text.count("$/cancelRequest for id") == 3
    assert "Traceback" not in text

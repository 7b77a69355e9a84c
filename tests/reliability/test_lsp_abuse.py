"""The language server under abuse (the short form of ``benchmarks/soak_lsp.py``).

A raw JSON-RPC client drives the real server over stdio: malformed messages,
notifications out of order, invalid ranges, a 1 MB document and a 10 s storm of
incremental edits. The server must stay alive, answer every request, publish no
diagnostics for a version older than one it already published, and end with the
diagnostics the core gives for the final text.
"""

from __future__ import annotations


import pytest


@pytest.fixture
def server(soak, tmp_path):
    (tmp_path / "readme.md").write_text("Not a story file.\n")
    lsp = soak.start_server(tmp_path, debounce_ms=10)
    yield lsp
    assert lsp.close() == 0


def test_bad_messages_are_survived_and_every_request_is_answered(soak, server, tmp_path):
    result = soak.abuse(server, tmp_path)
    assert all(result["alive_after"].values()), result
    assert result["malformed_requests_answered"], "a request with ill-typed params got no answer"


def test_a_request_with_ill_typed_params_gets_an_error_not_silence(soak, server, tmp_path):
    reply = server.request("textDocument/codeAction", {
        "textDocument": {"uri": (tmp_path / "x.txt").as_uri()},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": -3, "character": 0}},
        "context": {"diagnostics": []}}, timeout=20)
    assert reply["error"]["code"] == -32602


def test_edit_storm_converges_without_stale_publications(soak, server, tmp_path):
    big = soak.big_document(server, tmp_path, 1 << 20)
    assert big["alive"] and big["stories"] > 1000
    storm = soak.storm(server, tmp_path, seconds=10, rate=50)
    assert storm["alive"]
    assert storm["stale_publications"] == 0
    assert storm["matches_core"], storm["mismatch"]
    assert storm["publications"] > 10  # the edits were checked while they came, not only at the end
    rss = storm["rss_kib"]
    assert rss["peak"] < rss["start"] + 150 * 1024, rss  # bounded: no growth with the number of edits

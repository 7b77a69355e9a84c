"""The transport's promises against a real daemon: handshake, bad frames, unknown methods, limits, cancel."""

from __future__ import annotations

import asyncio
import socket
import struct

import msgpack
import pytest

from storytransformer_server.daemon import protocol as P
from storytransformer_server.daemon.client import DaemonClient
from storytransformer_server.daemon.protocol import DaemonError


def raw_connect(d) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(d.socket))
    return s


def send_frame(s: socket.socket, body: bytes) -> None:
    s.sendall(struct.pack(">I", len(body)) + body)


def recv_frame(s: socket.socket):
    header = b""
    while len(header) < 4:
        chunk = s.recv(4 - len(header))
        if not chunk:
            return None
        header += chunk
    (n,) = struct.unpack(">I", header)
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return msgpack.unpackb(body, raw=False)


def handshake_raw(s: socket.socket) -> dict:
    send_frame(s, msgpack.packb({"id": 1, "method": "handshake", "params": {"protocol": list(P.PROTOCOL_VERSION)}}))
    return recv_frame(s)


async def test_handshake_reports_protocol_and_pid(daemon):
    client = await daemon.connect()
    try:
        info = client.server_info
        assert info["protocol"] == list(P.PROTOCOL_VERSION)
        assert info["pid"] == daemon.proc.pid
        assert "findings" in info["methods"] and "propose/merge" in info["methods"]
    finally:
        await client.close()


def test_other_major_version_is_refused_with_a_clear_error(daemon):
    s = raw_connect(daemon)
    send_frame(s, msgpack.packb({"id": 1, "method": "handshake", "params": {"protocol": [99, 0]}}))
    answer = recv_frame(s)
    assert answer["error"]["code"] == P.VERSION_MISMATCH
    assert "protocol" in answer["error"]["message"]


def test_requests_before_the_handshake_are_refused(daemon):
    s = raw_connect(daemon)
    send_frame(s, msgpack.packb({"id": 7, "method": "status", "params": {}}))
    answer = recv_frame(s)
    assert answer["id"] == 7 and answer["error"]["code"] == P.INVALID_REQUEST


def test_garbage_gets_a_parse_error_and_the_connection_stays_usable(daemon):
    s = raw_connect(daemon)
    send_frame(s, b"\xc1\xc1\xc1 not msgpack")
    answer = recv_frame(s)
    assert answer == {"id": None, "error": {"code": P.PARSE_ERROR, "message": answer["error"]["message"]}}
    assert handshake_raw(s)["result"]["protocol"] == list(P.PROTOCOL_VERSION)


@pytest.mark.parametrize("message, code", [
    ([1, 2, 3], P.INVALID_REQUEST),
    ({"id": 5, "method": 42}, P.INVALID_REQUEST),
    ({"id": 5, "method": "status", "params": [1]}, P.INVALID_REQUEST),
    ({"id": 5.5, "method": "status"}, P.INVALID_REQUEST),
    ({"hello": "world"}, P.INVALID_REQUEST),
])
def test_malformed_messages_are_answered_not_fatal(daemon, message, code):
    s = raw_connect(daemon)
    handshake_raw(s)
    send_frame(s, msgpack.packb(message))
    answer = recv_frame(s)
    assert answer["error"]["code"] == code
    send_frame(s, msgpack.packb({"id": 9, "method": "status", "params": {}}))
    assert recv_frame(s)["result"]["pid"] == daemon.proc.pid


async def test_unknown_method_names_the_method(daemon):
    client = await daemon.connect()
    try:
        with pytest.raises(DaemonError) as e:
            await client.request("no/such/method", {})
        assert e.value.code == P.METHOD_NOT_FOUND
        assert "no/such/method" in e.value.message
        assert (await client.request("status"))["pid"] == daemon.proc.pid
    finally:
        await client.close()


def test_oversized_frame_is_refused_and_the_daemon_keeps_serving(daemon_process):
    daemon_process.start("--max-message-bytes", "4096")
    s = raw_connect(daemon_process)
    handshake_raw(s)
    send_frame(s, msgpack.packb({"id": 2, "method": "status", "params": {"pad": "x" * 10_000}}))
    answer = recv_frame(s)
    assert answer["error"]["code"] == P.MESSAGE_TOO_LARGE
    # skipped in full: the same connection still works
    send_frame(s, msgpack.packb({"id": 3, "method": "status", "params": {}}))
    assert recv_frame(s)["id"] == 3
    # far too large to skip: that connection is closed, the daemon stays up for others
    s.sendall(struct.pack(">I", 2**31))
    answer = recv_frame(s)
    assert answer["error"]["code"] == P.MESSAGE_TOO_LARGE
    assert recv_frame(s) is None
    s2 = raw_connect(daemon_process)
    assert handshake_raw(s2)["result"]["pid"] == daemon_process.proc.pid


async def test_client_refuses_to_send_an_oversized_message(daemon_process):
    daemon_process.start("--max-message-bytes", "4096")
    client = await daemon_process.connect()
    try:
        with pytest.raises(DaemonError) as e:
            await client.request("status", {"pad": "x" * 10_000})
        assert e.value.code == P.MESSAGE_TOO_LARGE
        assert (await client.request("status"))["pid"] == daemon_process.proc.pid
    finally:
        await client.close()


def test_client_hanging_up_mid_frame_does_not_hurt_the_daemon(daemon):
    s = raw_connect(daemon)
    s.sendall(struct.pack(">I", 100) + b"only part")
    s.close()
    s2 = raw_connect(daemon)
    assert handshake_raw(s2)["result"]["pid"] == daemon.proc.pid


async def test_cancel_ends_a_running_request(daemon):
    client = await daemon.connect()
    try:
        task = asyncio.create_task(client.request("debug/sleep", {"seconds": 30}, timeout=60))
        await asyncio.sleep(0.2)
        rid = max(client._pending)  # the id the sleep request went out with
        answer = await client.request("cancel", {"id": rid})
        assert answer["cancelled"] is True
        with pytest.raises(DaemonError) as e:
            await task
        assert e.value.code == P.CANCELLED
    finally:
        await client.close()


async def test_client_timeout_raises_and_cancels_in_the_daemon(daemon):
    client = await daemon.connect()
    try:
        with pytest.raises(DaemonError) as e:
            await client.request("debug/sleep", {"seconds": 30, "thread": True}, timeout=0.3)
        assert e.value.code == P.DEADLINE_EXCEEDED

        async def nothing_in_flight():
            st = await client.request("status")
            return all(c["in_flight"] <= 1 for c in st["clients"])  # only the status request itself

        for _ in range(100):
            if await nothing_in_flight():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the timed-out request is still running in the daemon")
    finally:
        await client.close()


async def test_a_request_cancelled_by_its_caller_is_cancelled_in_the_daemon(daemon):
    client = await daemon.connect()
    try:
        task = asyncio.create_task(client.request("debug/sleep", {"seconds": 30}, timeout=60))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            st = await client.request("status")
            if all(c["in_flight"] <= 1 for c in st["clients"]):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the cancelled request is still running in the daemon")
    finally:
        await client.close()


async def test_connect_without_a_daemon_fails_clearly(tmp_path):
    with pytest.raises(DaemonError) as e:
        await DaemonClient.connect(spawn=False, runtime_dir=tmp_path / "rt")
    assert e.value.code == P.DAEMON_NOT_RUNNING
    assert "daemon start" in e.value.message

"""Connections that never say who they are cannot cost the daemon memory or slots.

Before these limits, 40 TCP connections that each announced a 16 MiB frame and never sent a
handshake took the daemon from 46 MB to 699 MB, with no cap on connections and no timeout.
Now: frames before the handshake are at most 64 KiB (a bigger one is answered an error and
the connection closed, nothing buffered), a connection without a handshake is closed after
``handshake_timeout_s``, each listener takes at most ``max_connections`` clients, and a
stranger is never told the daemon's method names.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

import msgpack
import psutil
import pytest

from storytransformer_server.daemon.protocol import (INVALID_REQUEST, MESSAGE_TOO_LARGE, METHOD_NOT_FOUND,
                                                     PRE_HANDSHAKE_MAX_BYTES, PROTOCOL_VERSION, TOO_MANY_CONNECTIONS,
                                                     DaemonError)
from tests.daemon.conftest import DaemonProcess

MiB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def frame(message) -> bytes:
    body = msgpack.packb(message, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


def read_message(sock: socket.socket, timeout: float = 10) -> dict | None:
    """The next message on a raw socket, or None when the daemon closed it."""
    sock.settimeout(timeout)

    def exactly(n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            try:
                chunk = sock.recv(n - len(buf))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    header = exactly(4)
    if header is None:
        return None
    body = exactly(struct.unpack(">I", header)[0])
    return None if body is None else msgpack.unpackb(body, raw=False)


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except (socket.timeout, TimeoutError):
        return False


def unix_socket(d: DaemonProcess) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(d.socket))
    return s


def with_settings(tmp_path, name: str, **settings) -> DaemonProcess:
    d = DaemonProcess(tmp_path / name)
    d.logs.mkdir(parents=True, exist_ok=True)
    toml = "".join(f"{k} = {v!r}\n" for k, v in settings.items())
    (d.logs / "no-such-daemon.toml").write_text(toml, "utf-8")  # the file the fixture's environment names
    return d


@pytest.fixture
def small_daemon(tmp_path):
    d = with_settings(tmp_path, "small", max_connections=4, handshake_timeout_s=2.0)
    d.start()
    yield d
    d.stop()


@pytest.fixture
def tcp_daemon(tmp_path):
    """A daemon with its TCP listener on and default limits."""
    d = DaemonProcess(tmp_path / "tcp")
    port = free_port()
    d.start("--tcp-port", str(port))
    d.port = port
    yield d
    d.stop()


def test_unannounced_large_frames_cannot_grow_the_daemon(tcp_daemon):
    """The reproduction: 40 TCP connections announce 16 MiB frames and stream them, never handshaking."""
    proc = psutil.Process(tcp_daemon.proc.pid)
    before = proc.memory_info().rss
    socks, errors, replies = [], [], []

    def attack() -> None:
        s = socket.create_connection(("127.0.0.1", tcp_daemon.port))
        socks.append(s)
        try:
            s.sendall(struct.pack(">I", 16 * MiB - 16))
            chunk = b"\xa5" * MiB
            for _ in range(15):
                s.sendall(chunk)
        except OSError as e:  # the daemon hung up on us: what we want
            errors.append(e)
        replies.append(read_message(s, timeout=5))

    threads = [threading.Thread(target=attack) for _ in range(40)]
    for t in threads:
        t.start()
    peak = before
    while any(t.is_alive() for t in threads):
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.02)
    for t in threads:
        t.join()
    for s in socks:
        s.close()
    grown = peak - before
    assert grown < 64 * MiB, f"daemon RSS grew by {grown / MiB:.0f} MiB"
    # Each attacker got an answer that says why (or was cut off while still sending).
    answered = [r for r in replies if r is not None]
    assert all(r["error"]["code"] == MESSAGE_TOO_LARGE and r["id"] is None for r in answered)
    assert len(answered) + len(errors) >= 40


def test_a_frame_over_the_pre_handshake_limit_is_refused_and_the_connection_closed(small_daemon):
    s = unix_socket(small_daemon)
    try:
        s.sendall(struct.pack(">I", PRE_HANDSHAKE_MAX_BYTES + 1))
        reply = read_message(s)
        assert reply is not None and reply["error"]["code"] == MESSAGE_TOO_LARGE
        assert reply["error"]["data"]["limit"] == PRE_HANDSHAKE_MAX_BYTES
        assert closed_by_peer(s, 5)
    finally:
        s.close()


async def test_after_the_handshake_the_large_limit_applies(small_daemon):
    client = await small_daemon.connect()
    try:
        status = await client.request("status", {"padding": "x" * MiB})  # 16x the pre-handshake limit
        assert status["pid"] == small_daemon.proc.pid
    finally:
        await client.close()


def test_a_silent_connection_is_closed_after_the_handshake_timeout(small_daemon):
    s = unix_socket(small_daemon)
    try:
        start = time.monotonic()
        assert closed_by_peer(s, 15)
        waited = time.monotonic() - start
        assert 1.5 < waited < 10, waited  # handshake_timeout_s = 2
    finally:
        s.close()


def test_a_slow_partial_handshake_is_closed_too(small_daemon):
    """A slow-loris: half a frame, a byte at a time."""
    s = unix_socket(small_daemon)
    try:
        data = frame({"id": 1, "method": "handshake", "params": {"protocol": list(PROTOCOL_VERSION)}})
        start = time.monotonic()
        closed = False
        for b in data[:-1]:
            try:
                s.sendall(bytes([b]))
            except OSError:
                closed = True
                break
            time.sleep(0.2)
            if time.monotonic() - start > 6:
                break
        assert closed or closed_by_peer(s, 10)
        assert time.monotonic() - start < 12
    finally:
        s.close()


async def test_connections_over_the_cap_are_refused_with_an_error(small_daemon):
    time.sleep(0.5)  # the fixture's own "is it up?" connection is gone
    silent = [unix_socket(small_daemon) for _ in range(4)]
    try:
        time.sleep(0.3)  # let the daemon accept them
        extra = unix_socket(small_daemon)
        try:
            reply = read_message(extra, timeout=5)
            assert reply is not None and reply["error"]["code"] == TOO_MANY_CONNECTIONS
            assert "max_connections" in reply["error"]["message"]
            assert closed_by_peer(extra, 5)
        finally:
            extra.close()
        with pytest.raises(DaemonError) as e:  # the Python client says why
            await small_daemon.connect()
        assert "max_connections" in e.value.message
        # The silent ones are closed at the handshake timeout; then there is room again.
        for s in silent:
            assert closed_by_peer(s, 10)
        await asyncio.sleep(0.3)
        client = await small_daemon.connect()
        try:
            assert (await client.request("status"))["pid"] == small_daemon.proc.pid
        finally:
            await client.close()
    finally:
        for s in silent:
            s.close()


def test_tcp_strangers_do_not_take_the_unix_socket_slots(tmp_path):
    d = with_settings(tmp_path, "both", max_connections=2, handshake_timeout_s=30.0)
    port = free_port()
    d.start("--tcp-port", str(port))
    strangers = []
    try:
        time.sleep(0.5)
        strangers = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        time.sleep(0.3)
        refused = socket.create_connection(("127.0.0.1", port))
        try:
            assert read_message(refused)["error"]["code"] == TOO_MANY_CONNECTIONS
        finally:
            refused.close()

        async def local() -> int:
            client = await d.connect()
            try:
                return (await client.request("status"))["pid"]
            finally:
                await client.close()

        assert asyncio.run(local()) == d.proc.pid
    finally:
        for s in strangers:
            s.close()
        d.stop()


def test_a_wrong_token_does_not_unlock_the_large_frame_limit(tcp_daemon):
    s = socket.create_connection(("127.0.0.1", tcp_daemon.port))
    try:
        s.sendall(frame({"id": 1, "method": "handshake",
                         "params": {"protocol": list(PROTOCOL_VERSION), "token": "not-the-token"}}))
        assert read_message(s)["error"]["code"] == -32006  # unauthorized
        s.sendall(struct.pack(">I", MiB))
        reply = read_message(s)
        assert reply is not None and reply["error"]["code"] == MESSAGE_TOO_LARGE
        assert closed_by_peer(s, 5)
    finally:
        s.close()


def test_an_unknown_method_before_the_handshake_names_no_methods(small_daemon):
    s = unix_socket(small_daemon)
    try:
        for method in ("no/such/method", "status"):
            s.sendall(frame({"id": 7, "method": method, "params": {}}))
            reply = read_message(s)
            assert reply["error"]["code"] == INVALID_REQUEST
            assert "handshake" in reply["error"]["message"]
            assert "data" not in reply["error"] or "methods" not in (reply["error"]["data"] or {})
            assert "findings" not in repr(reply)
        # After the handshake, an unknown method is named as such (the client is trusted).
        s.sendall(frame({"id": 8, "method": "handshake", "params": {"protocol": list(PROTOCOL_VERSION)}}))
        assert "result" in read_message(s)
        s.sendall(frame({"id": 9, "method": "no/such/method", "params": {}}))
        assert read_message(s)["error"]["code"] == METHOD_NOT_FOUND
    finally:
        s.close()

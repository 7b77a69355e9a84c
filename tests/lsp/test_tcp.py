"""`storytransformer lsp --tcp` listens on 127.0.0.1 and speaks LSP over a real socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from .conftest import SERVER_ENV


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def frame(payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def read_message(sock: socket.socket) -> dict:
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = int(next(h for h in head.decode().split("\r\n") if h.lower().startswith("content-length")).split(":")[1])
    while len(rest) < length:
        rest += sock.recv(4096)
    return json.loads(rest[:length])


def test_tcp_mode_answers_initialize_on_localhost(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "storytransformer", "lsp", "--tcp", "--port", str(port)],
                            env=SERVER_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "the server never listened"
                time.sleep(0.1)
        with sock:
            sock.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                "params": {"processId": os.getpid(), "rootUri": None, "capabilities": {}}}))
            reply = read_message(sock)
            assert reply["id"] == 1 and reply["result"]["serverInfo"]["name"] == "storytransformer"
            assert reply["result"]["capabilities"]["positionEncoding"] == "utf-16"
            sock.sendall(frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
            while read_message(sock).get("id") != 2:
                pass
    finally:
        proc.terminate()
        proc.wait(10)


def test_tcp_mode_refuses_other_hosts():
    r = subprocess.run([sys.executable, "-m", "storytransformer", "lsp", "--tcp", "--host", "0.0.0.0"],
                       env=SERVER_ENV, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "127.0.0.1" in r.stderr

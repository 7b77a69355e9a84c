"""Security checks: no TCP listener unless configured, private token files, models without code or pickles."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon.conftest import DaemonProcess

ROOT = Path(__file__).resolve().parents[2]


def listening_tcp_inodes() -> set[str]:
    """Socket inodes of every listening TCP socket (IPv4 and IPv6) in this network namespace."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A":  # TCP_LISTEN
                found.add(cols[9])
    return found


def tcp_listeners_of(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes & listening_tcp_inodes()


pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_daemon_opens_no_tcp_listener_unless_configured(tmp_path):
    plain = DaemonProcess(tmp_path / "plain")
    plain.start()
    try:
        assert tcp_listeners_of(plain.proc.pid) == set()
    finally:
        plain.stop()
    with_tcp = DaemonProcess(tmp_path / "tcp")  # the check itself sees a listener when there is one
    with_tcp.start("--tcp-port", str(free_port()))
    try:
        assert len(tcp_listeners_of(with_tcp.proc.pid)) == 1
    finally:
        with_tcp.stop()


def test_the_language_server_on_stdio_opens_no_tcp_listener(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STORYTRANSFORMER_RUNTIME_DIR": str(tmp_path / "rt"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "storytransformer", "lsp"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {},
            "initializationOptions": {"daemon": {"enabled": False}}}}).encode()
        proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        proc.stdin.flush()
        header = proc.stdout.readline()  # the server answered: it is fully up
        assert header.lower().startswith(b"content-length")
        assert tcp_listeners_of(proc.pid) == set()
    finally:
        proc.kill()
        proc.wait()


def refused_stderr(tmp_path, token_file: Path) -> str:
    """Start a TCP daemon configured with ``token_file``; it must exit with 2. Returns its stderr."""
    d = DaemonProcess(tmp_path / "d")
    d.logs.mkdir(parents=True)
    Path(d.env["STORYTRANSFORMER_DAEMON_CONFIG"]).write_text(f'token_file = "{token_file}"\n')
    d.start("--tcp-port", str(free_port()), wait=False)
    try:
        assert d.proc.wait(30) == 2
        return d.proc.stderr.read()
    finally:
        d.stop()


def test_a_token_file_in_a_directory_others_can_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # anyone could swap the token file for their own
    err = refused_stderr(tmp_path, shared / "token")
    assert str(shared) in err and "chmod" in err, err
    assert not (shared / "token").exists()


def test_a_token_file_that_is_a_symbolic_link_is_refused(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    target = private / "elsewhere"
    target.write_text("sometoken\n")
    os.chmod(target, 0o600)
    (private / "token").symlink_to(target)
    assert "symbolic link" in refused_stderr(tmp_path, private / "token")


def tiny_safetensors(path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"weight": np.zeros((2, 2), dtype=np.float32)}, str(path))


def evil_model_dir(tmp_path: Path, weights: bool) -> tuple[Path, Path]:
    """A model directory whose configuration asks for custom code that, if run, leaves a marker file."""
    d = tmp_path / "evil-model"
    d.mkdir()
    marker = tmp_path / "code-was-run"
    (d / "config.json").write_text(json.dumps({
        "model_type": "evil_custom", "architectures": ["EvilModel"],
        "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel",
                     "AutoTokenizer": ["evil.EvilTokenizer", None]}}))
    (d / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    (d / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["evil.EvilTokenizer", None]}}))
    if weights:
        tiny_safetensors(d / "model.safetensors")
    return d, marker


@pytest.mark.parametrize("weights", [False, True], ids=["only-code", "code-and-safetensors"])
def test_a_model_directory_with_custom_code_is_not_run(tmp_path, weights):
    from storytransformer.config import Config, EngineConfig
    from storytransformer.engine.local import LocalEngine

    d, marker = evil_model_dir(tmp_path, weights)
    eng = LocalEngine(Config(engine=EngineConfig(model=str(d))), cache_root=tmp_path / "cache")
    with pytest.raises(Exception) as e:
        eng.load()
    assert not marker.exists(), "the model directory's Python code was executed"
    if not weights:
        assert "safetensors" in str(e.value)
    assert eng.status().state in ("failed", "unloaded", "unavailable")

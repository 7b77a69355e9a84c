"""One daemon per user, stale files after a crash, permissions, shutdown, idle exit, spawning on demand."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import pytest

from storytransformer_server.daemon import protocol as P
from storytransformer_server.daemon.client import DaemonClient, connect_with_backoff
from storytransformer_server.daemon.lifecycle import socket_answers
from storytransformer_server.daemon.protocol import DaemonError

from .conftest import wait_for


def test_socket_and_directory_are_private(daemon):
    assert stat.S_IMODE(os.stat(daemon.runtime).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600
    assert stat.S_ISSOCK(os.stat(daemon.socket).st_mode)


def test_second_run_finds_the_first_and_exits_cleanly(daemon, tmp_path):
    from .conftest import DaemonProcess

    second = DaemonProcess(tmp_path)
    second.env = daemon.env
    proc = second.start(wait=False)
    assert proc.wait(30) == 0
    assert "already running" in proc.stderr.read() and str(daemon.proc.pid) in open(daemon.runtime / "daemon.lock").read()
    proc.stdout.close()
    proc.stderr.close()
    start = daemon.cli("start")
    assert start.returncode == 0 and "already running" in start.stdout and str(daemon.proc.pid) in start.stdout
    assert daemon.proc.poll() is None


def test_start_status_stop_through_the_cli(daemon_process):
    d = daemon_process
    assert d.cli("status").returncode == 3
    started = d.cli("start")
    assert started.returncode == 0, started.stderr
    status = d.cli("status", "--json")
    assert status.returncode == 0
    st = json.loads(status.stdout)
    assert st["running"] is True and st["pid"] > 0 and "engine" in st and st["memory_rss_bytes"] > 0
    text = d.cli("status").stdout
    for word in ("pid:", "uptime:", "clients:", "roots:", "engine:", "device:", "memory:"):
        assert word in text
    stopped = d.cli("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not d.socket.exists()
    assert d.cli("status").returncode == 3
    assert d.cli("stop").returncode == 0  # stopping a stopped daemon is not an error


async def test_kill_9_mid_request_fails_the_request_and_a_new_daemon_replaces_the_stale_socket(daemon):
    client = await daemon.connect()
    lost: list[str] = []
    client.on_disconnect(lost.append)
    pending = asyncio.create_task(client.request("debug/sleep", {"seconds": 30}, timeout=60))
    await asyncio.sleep(0.2)
    daemon.proc.send_signal(signal.SIGKILL)
    with pytest.raises(DaemonError) as e:
        await asyncio.wait_for(pending, 10)
    assert e.value.code == P.CONNECTION_LOST
    await wait_for(lambda: lost)
    daemon.proc.wait(10)
    assert daemon.socket.exists() and not socket_answers(daemon.socket)  # stale socket left behind
    daemon.start()
    client2 = await daemon.connect()
    try:
        assert client2.server_info["pid"] == daemon.proc.pid
    finally:
        await client2.close()


async def test_connect_spawns_a_daemon_when_none_runs_and_reconnects_after_a_crash(daemon_process, monkeypatch):
    d = daemon_process
    for key in ("STORYTRANSFORMER_LOG_DIR", "STORYTRANSFORMER_DAEMON_CONFIG"):
        monkeypatch.setenv(key, d.env[key])
    client = await DaemonClient.connect(spawn=True, runtime_dir=d.runtime)
    pid = client.server_info["pid"]
    os.kill(pid, signal.SIGKILL)
    assert "lost" in await client.wait_closed() or client.closed
    client2 = await connect_with_backoff(spawn=True, runtime_dir=d.runtime)
    try:
        assert client2.server_info["pid"] != pid
        assert (await client2.request("status"))["pid"] == client2.server_info["pid"]
    finally:
        await client2.request("shutdown")
        await client2.close()


def test_shutdown_removes_socket_and_info(daemon):
    from storytransformer_server.daemon.client import call

    answer = call("shutdown", runtime_dir=daemon.runtime)
    assert answer["stopping"] is True and answer["pid"] == daemon.proc.pid
    assert daemon.wait_exit() == 0
    assert not daemon.socket.exists() and not (daemon.runtime / "daemon.json").exists()


def test_sigterm_stops_cleanly(daemon):
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert not daemon.socket.exists()


def test_exits_after_idle_time_without_clients(daemon_process):
    daemon_process.start("--idle-exit", "0.02")  # 1.2 s
    assert daemon_process.wait_exit(30) == 0
    assert "no clients" in (daemon_process.logs / "daemon.log").read_text()


async def test_stays_while_a_client_is_connected(daemon_process):
    daemon_process.start("--idle-exit", "0.02")
    client = await daemon_process.connect()
    try:
        await asyncio.sleep(2.5)  # longer than the idle time: the connected client keeps it alive
        assert daemon_process.proc.poll() is None
        assert (await client.request("status"))["pid"] == daemon_process.proc.pid
    finally:
        await client.close()
    assert daemon_process.wait_exit(30) == 0


def test_exits_when_its_runtime_directory_is_deleted(daemon):
    shutil.rmtree(daemon.runtime)
    assert daemon.wait_exit(30) == 0


def test_refuses_a_runtime_dir_others_can_write(daemon_process):
    daemon_process.runtime.mkdir(mode=0o700)
    os.chmod(daemon_process.runtime, 0o777)
    proc = daemon_process.start(wait=False)
    assert proc.wait(30) == 2
    err = proc.stderr.read()
    assert "must not be accessible to group or others" in err and "chmod 700" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a directory owned by another user")
def test_refuses_a_runtime_dir_owned_by_someone_else(daemon_process):
    daemon_process.runtime.mkdir(mode=0o700)
    os.chown(daemon_process.runtime, 65534, 65534)
    proc = daemon_process.start(wait=False)
    assert proc.wait(30) == 2
    assert "owned by uid 65534" in proc.stderr.read()


@pytest.mark.skipif(os.geteuid() != 0 or not hasattr(os, "fork"), reason="needs root to act as another user")
def test_another_user_cannot_connect(daemon):
    pid = os.fork()
    if pid == 0:  # the child becomes 'nobody' and tries the socket
        code = 3
        try:
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(daemon.socket))
                code = 0
            except PermissionError:
                code = 1
            except OSError:
                code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1


async def test_tcp_listener_needs_the_token(daemon_process):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon_process.start("--tcp-port", str(port))
    token_file = daemon_process.runtime / "tcp-token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    with pytest.raises(DaemonError) as e:
        await DaemonClient.connect_tcp("127.0.0.1", port, "wrong")
    assert e.value.code == P.UNAUTHORIZED
    client = await DaemonClient.connect_tcp("127.0.0.1", port, token_file.read_text().strip())
    try:
        st = await client.request("status")
        assert st["tcp"] == ["127.0.0.1", port]
        assert [c["transport"] for c in st["clients"]] == ["tcp"]
    finally:
        await client.close()


def test_bad_settings_file_is_named(daemon_process):
    cfg = daemon_process.logs / "daemon.toml"
    daemon_process.logs.mkdir(parents=True)
    cfg.write_text("idle_exit = 5\n")
    daemon_process.env["STORYTRANSFORMER_DAEMON_CONFIG"] = str(cfg)
    result = daemon_process.cli("run")
    assert result.returncode == 2
    assert "daemon.toml" in result.stderr and "idle_exit" in result.stderr


CRASHING_CLIENT = """
import asyncio, sys
from storytransformer_server.daemon.client import DaemonClient

async def main():
    c = await DaemonClient.connect(spawn=False, runtime_dir=sys.argv[1])
    await c.request("workspace/register", {"root": sys.argv[2]})
    await c.request("document/overlay", {"path": sys.argv[3], "text": sys.argv[4], "version": 1})
    asyncio.ensure_future(c.request("debug/sleep", {"seconds": 30}, timeout=60))
    await asyncio.sleep(0.2)
    print("ready", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_client_killed_mid_request_leaves_the_daemon_serving(daemon, workspace):
    import subprocess
    import sys

    from .conftest import BAD_STORY

    path = workspace / "stories" / "backlog.txt"
    other = await daemon.connect("survivor")
    notes: list[dict] = []
    other.on_notification(P.INDEX_CHANGED, notes.append)
    try:
        await other.request("workspace/register", {"root": str(workspace)})
        proc = subprocess.Popen([sys.executable, "-c", CRASHING_CLIENT, str(daemon.runtime), str(workspace), str(path), BAD_STORY],
                                env=daemon.env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        assert "ST101" in {f["code"] for f in (await other.request("findings", {"path": str(path), "semantic": False}))["findings"]}
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        await wait_for(lambda: any(n["reason"] == "overlay-closed" for n in notes))
        answer = await other.request("findings", {"path": str(path), "semantic": False})
        assert answer["findings"] == [] and answer["version"] is None
        st = await other.request("status")
        assert [c["name"] for c in st["clients"]] == ["survivor"]
    finally:
        await other.close()


def test_a_tcp_port_in_use_is_a_clear_error(daemon_process):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = daemon_process.start("--tcp-port", str(port), wait=False)
        assert proc.wait(30) == 2
        assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr.read()
    assert not daemon_process.socket.exists()

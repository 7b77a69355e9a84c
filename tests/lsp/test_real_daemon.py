"""The model adapter against a real daemon process (no model loaded: that is the engine's tests' job)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from .conftest import SERVER_ENV, make_client, start, until

STATE = tempfile.mkdtemp(prefix="st-lsp-daemon-")
RUNTIME = os.path.join(STATE, "run")
ENV = {**SERVER_ENV, "STORYTRANSFORMER_RUNTIME_DIR": RUNTIME, "XDG_STATE_HOME": STATE,
       "STORYTRANSFORMER_CACHE_DIR": os.path.join(STATE, "cache")}
CONFIG = ClientServerConfig(server_command=[sys.executable, "-m", "storytransformer", "lsp"],
                            client_factory=make_client, server_env=ENV)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon():
    os.makedirs(RUNTIME, mode=0o700, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "storytransformer", "daemon", "start", "--wait", "60"],
                       env=ENV, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.fail(f"the daemon did not start: {r.stderr[-2000:]}")
    yield RUNTIME
    subprocess.run([sys.executable, "-m", "storytransformer", "daemon", "stop"], env=ENV, capture_output=True,
                   timeout=60)


@pytest_lsp.fixture(config=CONFIG)
async def daemon_client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def test_engine_status_comes_from_the_running_daemon(daemon, daemon_client, workspace):
    await start(daemon_client, workspace, options={"daemon": {"spawn": False}})
    # the probe at start reaches the daemon: the reason is the engine's, not a connection error
    status = await until(lambda: [s for s in daemon_client.engine_status if "daemon" not in (s["reason"] or "")],
                         timeout=30, what="an engine status from the daemon")
    assert status[-1]["state"] in ("unavailable", "ready", "loading")
    reply = await daemon_client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="storytransformer.engineStatus"))
    assert reply["state"] == status[-1]["state"]
    assert "cannot reach" not in (reply["reason"] or "")

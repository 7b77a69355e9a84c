"""The remote engine against a real OpenAI-compatible server: ``transformers serve`` on
127.0.0.1, serving the default model from the safetensors cache the session converted."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time

import pytest

from storytransformer.config import Config, EngineConfig
from storytransformer.engine import EngineConfigError, EngineUnavailable, Unsupported
from storytransformer.engine.remote import RemoteEngine
from storytransformer.formats import read_source

pytestmark = pytest.mark.slow

SERVE = "from transformers.cli.transformers import main; import sys; sys.argv[0] = 'transformers'; sys.exit(main())"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(cold_engine, tmp_path_factory):
    for mod in ("fastapi", "uvicorn", "httpx"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed (pip install 'transformers[serving]')")
    model_dir = cold_engine[1].cache_dir
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", model_dir, "--host", "127.0.0.1",
                                 "--port", str(port), "--device", "cpu"], stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(600):
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"transformers serve did not answer within 300 s:\n{log.read_text()[-2000:]}")
        yield url, model_dir
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def remote(url: str, **kw) -> RemoteEngine:
    return RemoteEngine(Config(engine=EngineConfig(remote_url=url, max_new_tokens=40, **kw)))


def stories(*lines: str):
    return read_source("backlog.txt", "\n".join(lines) + "\n").stories


def test_load_finds_the_served_model(server):
    url, model_dir = server
    eng = remote(url)
    st = eng.load()
    assert st.state == "ready" and st.backend == "remote" and st.model == model_dir


def test_unknown_model_name_is_a_config_error(server):
    with pytest.raises(EngineConfigError, match="engine.remote_model: 'no-such-model' is not served"):
        remote(server[0], remote_model="no-such-model").load()


def test_merge_over_http_is_grounded(server):
    a, b = stories("As a visitor, I want to search events, so that I find concerts.",
                   "As a visitor, I want to search events by date.")
    found = remote(server[0], generate=True).propose_merge([a, b], include_rejected=True)
    assert any("generated" in p.origin for p in found)  # the server's answer went through the validator
    accepted = [p for p in found if p.accepted]
    assert accepted and all(not p.grounding.invented_words for p in accepted)


def test_ranking_follows_what_the_server_offers(server):
    """``transformers serve`` returns no prompt log-probabilities: proposals come unranked; a server
    that returns them (vLLM, llama.cpp) gets them ranked."""
    eng = remote(server[0], generate=False)
    (s,) = stories("As a cook, I want to chop and fry onions, so that the soup tastes good.")
    try:
        eng.score(["As a visitor, I want to search events."])
        ranked = True
    except Unsupported:
        ranked = False
    found = eng.propose_split(s)
    assert found and all(p.accepted for p in found)
    assert all((p.score is not None) == ranked for p in found)


def test_unreachable_server_fails_clearly_after_retries():
    eng = remote(f"http://127.0.0.1:{free_port()}/v1", retries=1, timeout_s=2)
    with pytest.raises(EngineUnavailable, match="cannot reach"):
        eng.load()
    assert eng.status().state == "failed"


def test_bad_url_names_the_setting():
    with pytest.raises(EngineConfigError, match="engine.remote_url"):
        remote("ftp://example.invalid")

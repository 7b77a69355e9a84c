"""The engine's fast path (fastgen over the loaded weights) with the real default model on the CPU:
the same greedy text and scores as the transformers path, weights shared rather than copied, and a
backlog prefix reused across requests."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from storytransformer.config import Config, ConfigError, EngineConfig, from_table  # noqa: E402
from storytransformer.engine.contract import EngineConfigError  # noqa: E402
from storytransformer.engine.fastgen.checkpoint import config_from_hf, from_hf_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MERGE = [{"role": "user", "content": "Merge these two user stories into one: As a user, I want to log in so that "
                                     "I can see my data. As a user, I want to sign in so that my data is visible."}]


@pytest.fixture(scope="module")
def fast_engine(model_cache):
    from storytransformer.engine.local import LocalEngine

    engine = LocalEngine(Config(engine=EngineConfig(generate=False, max_new_tokens=48, fast_path="on")),
                         cache_root=model_cache)
    engine.load()
    return engine


def test_status_says_the_fast_path_is_on(fast_engine, engine):
    assert fast_engine.backend.session is not None and engine.backend.session is None  # auto: off on the CPU
    assert any(n.startswith("fast path: static KV cache of 8192 tokens") for n in fast_engine.status().notes)


def test_same_greedy_text_as_the_transformers_path(fast_engine, engine):
    assert fast_engine.generate(MERGE) == engine.generate(MERGE)
    allowed = "As a user, I want to log in so that I can see my data."
    constrained = fast_engine.generate(MERGE, allowed_text=allowed)
    assert constrained == engine.generate(MERGE, allowed_text=allowed)
    words = set(allowed.lower().replace(",", " ").replace(".", " ").split()) | {"as", "a", "an", "i", "want", "to", "so", "that"}
    assert set(constrained.lower().replace(",", " ").replace(".", " ").split()) <= words  # the allowed vocabulary


def test_same_scores_as_the_transformers_path(fast_engine, engine):
    texts = ["As a user, I want to log in.", "Bananas are yellow.", ""]
    context = "Stories: As a user, I want to log in so that I can see my data."
    fast, slow = fast_engine.score(texts, context=context), engine.score(texts, context=context)
    assert [s.tokens for s in fast] == [s.tokens for s in slow]
    assert [s.logprob for s in fast] == pytest.approx([s.logprob for s in slow], abs=1e-3)
    assert fast[0].logprob > fast[1].logprob


def test_a_second_request_on_the_same_backlog_prefills_only_its_question(fast_engine, engine):
    backlog = "\n".join(p.read_text("utf-8") for p in sorted((ROOT / "examples").glob("*.stories.*")))
    n_backlog = fast_engine.count_tokens(backlog)
    assert n_backlog > 500
    ask = [{"role": "user", "content": f"Backlog:\n{backlog}\n\nQuestion: which story is about passwords?"},
           {"role": "user", "content": f"Backlog:\n{backlog}\n\nQuestion: which story mentions an administrator?"}]
    fast_engine.generate([ask[0]], max_new_tokens=6)
    first = dict(fast_engine.backend.session.last)
    answer = fast_engine.generate([ask[1]], max_new_tokens=6)
    second = fast_engine.backend.session.last
    assert first["prefilled"] > n_backlog  # the whole backlog the first time
    assert second["reused"] > n_backlog and second["prefilled"] < 20  # only the question the second time
    assert answer == engine.generate([ask[1]], max_new_tokens=6)  # a cold, uncached run agrees


def test_weights_are_shared_with_the_transformers_model(fast_engine):
    hf = fast_engine.backend.inner.model
    fast = fast_engine.backend.session.model
    layer, mine = hf.model.layers[0], fast.layers[0]
    assert fast.tok_embeddings.weight.data_ptr() == hf.model.embed_tokens.weight.data_ptr()
    assert layer.self_attn.q_proj.weight.data_ptr() == mine.attention.wqkv.weight.data_ptr()  # a view of the fused matrix
    assert layer.mlp.up_proj.weight.data_ptr() == (mine.feed_forward.w13.weight.data_ptr()
                                                   + layer.mlp.gate_proj.weight.numel() * layer.mlp.gate_proj.weight.element_size())


def test_unsupported_models_are_named():
    from transformers import GPT2Config, LlamaConfig

    with pytest.raises(ValueError, match="not 'gpt2'"):
        config_from_hf(GPT2Config())
    scaled = LlamaConfig(rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048})
    with pytest.raises(ValueError, match="yarn"):
        config_from_hf(scaled)
    with pytest.raises(ValueError, match="unquantized"):
        class Quantized(torch.nn.Module):
            is_quantized = True
            config = LlamaConfig()
        from_hf_model(Quantized())


def test_fast_path_on_for_a_model_it_cannot_run_is_a_clear_error(monkeypatch, model_cache):
    from storytransformer.engine import local

    def refuse(hf_model, fused=None):
        raise ValueError("the fast path runs llama, qwen2, mistral decoders, not 'phi3'")

    monkeypatch.setattr("storytransformer.engine.fastgen.checkpoint.from_hf_model", refuse)
    engine = local.LocalEngine(Config(engine=EngineConfig(generate=False, fast_path="on")), cache_root=model_cache)
    with pytest.raises(EngineConfigError, match="fast_path.*phi3"):
        engine.load()
    auto = local.LocalEngine(Config(engine=EngineConfig(generate=False, fast_path="auto")), cache_root=model_cache)
    auto.load()  # auto on the CPU does not even try
    assert auto.backend.session is None


def test_bad_setting_is_refused():
    with pytest.raises(ConfigError, match="engine.fast_path' must be auto, on or off"):
        from_table({"engine": {"fast_path": "fast"}})


def test_merges_on_one_backlog_share_its_resident_prefix(fast_engine, engine):
    """The backlog context goes first in every merge prompt and is the same text for every pair, so
    the second merge prefills only its own pair and request."""
    from storytransformer.formats import read_source

    path = ROOT / "examples" / "library.stories.txt"
    backlog = list(read_source(str(path), path.read_text("utf-8")).stories)
    assert len(backlog) >= 6
    context_tokens = fast_engine.backlog_context("merge", [backlog[0], backlog[9]], backlog).tokens
    seen = []
    real_sync = fast_engine.backend.session._sync

    def sync(ids):
        token = real_sync(ids)
        seen.append(dict(fast_engine.backend.session.last))
        return token

    fast_engine.backend.session._sync = sync
    try:
        # Two pairs that can be merged without losing a need: US-1 with US-10, and US-1 with US-6.
        first = fast_engine.propose_merge([backlog[0], backlog[9]], backlog=backlog)
        before = len(seen)
        second = fast_engine.propose_merge([backlog[0], backlog[5]], backlog=backlog)
    finally:
        del fast_engine.backend.session._sync
    assert first and second
    assert max(s["reused"] for s in seen[before:]) > context_tokens  # the backlog stayed resident
    assert [p.text for p in second] == [p.text for p in engine.propose_merge([backlog[0], backlog[5]], backlog=backlog)]

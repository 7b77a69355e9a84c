"""``engine.quantization = "int4"`` and ``engine.kv_cache = "fp8"``: parsed and checked like every key,
refused with a message naming the setting where they cannot run (the CPU's plan, fast_path = off), run
by the fast path for the packaged SmolLM2-135M (its 576-wide inputs padded), and reported by ``engine status``.
The GPU paths themselves (quantising to int4, an fp8 cache on CUDA) need a CUDA GPU and are not run here."""

from __future__ import annotations

import json
import types

import pytest

from storytransformer.config import Config, ConfigError, EngineConfig, from_table
from storytransformer.engine.contract import EngineConfigError
from storytransformer.engine.hardware import Capabilities, plan, quantization_config

CPU = Capabilities()
H100 = Capabilities(cuda_devices=1, compute_capability=(9, 0), gpu_name="H100", bf16_supported=True)


# -- configuration ------------------------------------------------------------------------------
def test_int4_and_fp8_are_accepted():
    cfg = from_table({"engine": {"quantization": "int4", "kv_cache": "fp8"}}, source="proj.toml")
    assert (cfg.engine.quantization, cfg.engine.kv_cache) == ("int4", "fp8")
    assert Config().engine.kv_cache == "bf16"


@pytest.mark.parametrize("key, value", [("quantization", "int3"), ("kv_cache", "fp16"), ("kv_cache", 8)])
def test_bad_values_name_the_key_and_the_file(key, value):
    with pytest.raises(ConfigError) as e:
        from_table({"engine": {key: value}}, source="proj.toml")
    assert str(e.value).startswith("proj.toml: ") and f"'tool.storytransformer.engine.{key}'" in str(e.value)


# -- the plan -------------------------------------------------------------------------------------
def test_int4_on_the_cpu_is_refused_naming_quantization():
    with pytest.raises(EngineConfigError) as e:
        plan(EngineConfig(quantization="int4"), CPU)
    assert e.value.setting == "quantization" and "CUDA GPU" in str(e.value)


def test_int4_needs_the_fast_path_and_bf16():
    with pytest.raises(EngineConfigError, match=r"engine.quantization: .*fast_path"):
        plan(EngineConfig(quantization="int4", fast_path="off"), H100)
    with pytest.raises(EngineConfigError, match=r"engine.quantization: .*not float32"):
        plan(EngineConfig(quantization="int4", dtype="float32"), H100)


def test_int4_on_a_gpu_loads_bf16_without_bitsandbytes():
    p = plan(EngineConfig(quantization="int4"), H100)  # H100 here has no bitsandbytes installed
    assert (p.quantization, p.dtype) == ("int4", "bfloat16")
    assert quantization_config(p) is None  # transformers loads bf16; the fast path quantises


def test_fp8_cache_on_the_cpu_or_without_the_fast_path_is_refused_naming_kv_cache():
    for cfg, caps in ((EngineConfig(kv_cache="fp8"), CPU), (EngineConfig(kv_cache="fp8", fast_path="on"), CPU),
                      (EngineConfig(kv_cache="fp8", fast_path="off"), H100)):
        with pytest.raises(EngineConfigError) as e:
            plan(cfg, caps)
        assert e.value.setting == "kv_cache" and 'kv_cache = "bf16"' in str(e.value)
    assert plan(EngineConfig(kv_cache="fp8"), H100).kv_cache == "fp8"


# -- int4 shapes ------------------------------------------------------------------------------------
def test_the_fast_path_runs_the_packaged_model_in_int4_with_its_576_inputs_padded(model_cache):
    """The real SmolLM2-135M (hidden size 576, no multiple of the packing's 128): its matrices are packed
    with zero-padded inputs, the bf16 layers are freed, and the model still ranks a story far above the
    same words shuffled, with per-token scores near the unquantised model's. The fast path's own start
    over the really loaded model, its plan set to int4 as a GPU's plan would be (the CPU's plan refuses
    int4 earlier; here the int4 layers dequantise in plain torch)."""
    import dataclasses

    torch = pytest.importorskip("torch")
    from storytransformer.engine.fast_backend import FastPathBackend, resident_bytes
    from storytransformer.engine.fastgen.int4 import Int4Linear
    from storytransformer.engine.transformers_backend import TransformersBackend

    texts = ["As a visitor, I want to search the catalogue, so that I can find a book.",
             "catalogue the visitor search find, want as I so a book can I that to."]
    inner = TransformersBackend(Config(), cache_root=model_cache)
    inner.load()
    seqs = [inner.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    reference = [s.per_token for s in inner.score_ids(inner.context_ids(""), seqs, None, None)]
    dense = sum(p.numel() * p.element_size() for layer in inner.model.model.layers for p in layer.parameters())
    inner.plan = dataclasses.replace(inner.plan, quantization="int4")
    fast = FastPathBackend(Config(engine=EngineConfig(quantization="int4", fast_path="on", context_tokens=256)),
                           inner)
    try:
        fast._start()
        assert fast.session is not None and fast.inner_released
        linears = [m for m in fast.session.model.layers.modules() if isinstance(m, torch.nn.Linear | Int4Linear)]
        assert linears and all(isinstance(m, Int4Linear) for m in linears)
        narrow = [m for m in linears if m.in_features == 576]
        assert narrow and all(m.qweight.shape[0] * 8 == 640 for m in narrow)  # padded to whole blocks
        assert resident_bytes(fast.session.model.layers) < dense / 5  # 4-bit codes against float32 weights
        got = [s.per_token for s in fast.score(texts)]
        assert got[0] > got[1] + 1.0  # the story stays far likelier than its shuffled words
        assert all(abs(g - r) < 1.0 for g, r in zip(got, reference)), (got, reference)
    finally:
        fast.unload()


def test_int4_on_the_cpu_never_loads_the_packaged_model(model_cache):
    from storytransformer.engine.local import LocalEngine

    engine = LocalEngine(Config(engine=EngineConfig(quantization="int4", fast_path="on")), cache_root=model_cache)
    with pytest.raises(EngineConfigError) as e:
        engine.load()
    assert e.value.setting == "quantization"
    assert not engine.backend.loaded and engine.status().state == "failed"
    assert engine.status().error.startswith("engine.quantization: int4 needs the fast path on a CUDA GPU")


def test_fp8_cache_on_the_cpu_is_refused_with_the_packaged_model(model_cache):
    from storytransformer.engine.local import LocalEngine

    engine = LocalEngine(Config(engine=EngineConfig(kv_cache="fp8", fast_path="on")), cache_root=model_cache)
    with pytest.raises(EngineConfigError) as e:
        engine.load()
    assert e.value.setting == "kv_cache" and "CPU" in str(e.value)
    assert not engine.backend.loaded and engine.status().state == "failed"


def test_freeing_the_transformers_matrices_after_int4():
    """The int4 path on a small random model with 128-multiple shapes, on the CPU: the bf16 matrices of
    the transformers layers are dropped, the fast model holds int4 layers and costs fewer bytes."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from storytransformer.engine.fast_backend import release_layer_matrices, resident_bytes
    from storytransformer.engine.fastgen.checkpoint import from_hf_model
    from storytransformer.engine.fastgen.int4 import Int4Linear, quantize_linears_int4

    cfg = transformers.LlamaConfig(vocab_size=256, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   tie_word_embeddings=False)
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    fast = from_hf_model(hf)
    before = resident_bytes(fast)
    assert quantize_linears_int4(fast) == 2 * 4  # wqkv, wo, w13, w2 per layer
    release_layer_matrices(hf)
    assert all(isinstance(m, Int4Linear) for layer in fast.layers for m in
               (layer.attention.wqkv, layer.attention.wo, layer.feed_forward.w13, layer.feed_forward.w2))
    assert all(m.weight.numel() == 0 for m in hf.model.layers.modules() if isinstance(m, torch.nn.Linear))
    assert resident_bytes(fast) < before - 3 * 2 * (256 * 256 + 3 * 256 * 512) // 4


# -- status ------------------------------------------------------------------------------------------
def test_status_before_loading_reports_the_planned_formats(model_cache):
    from storytransformer.engine.local import LocalEngine

    st = LocalEngine(Config(engine=EngineConfig(quantization="int4", kv_cache="fp8")), H100,
                     cache_root=model_cache).status()
    assert (st.weights, st.kv_cache, st.kv_cache_bytes) == ("int4", "fp8", None)
    st = LocalEngine(Config(), CPU, cache_root=model_cache).status()
    assert (st.weights, st.kv_cache) == ("float32", "float32")


def test_status_reports_the_cache_bytes_of_the_loaded_fast_path(model_cache):
    from storytransformer.engine.contract import STATUS_SCHEMA
    from storytransformer.engine.local import LocalEngine

    jsonschema = pytest.importorskip("jsonschema")
    engine = LocalEngine(Config(engine=EngineConfig(generate=False, fast_path="on", context_tokens=1000)),
                         cache_root=model_cache)
    st = engine.load()
    assert (st.weights, st.kv_cache) == ("float32", "float32")
    assert st.kv_cache_bytes == engine.backend.session.cache.nbytes > 0
    jsonschema.validate(json.loads(json.dumps(st.to_dict())), STATUS_SCHEMA)
    from storytransformer_server.subcommands.engine import _text

    text = _text(st.to_dict())
    assert "    weights  float32" in text and f"kv cache  float32 ({st.kv_cache_bytes / 2**20:.0f} MiB)" in text
    engine.unload()
    assert engine.status().kv_cache_bytes is None

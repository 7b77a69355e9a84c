"""The 8-bit (e4m3) KV cache: the fused cache write, the Triton prefill and decode kernels that read
the 8-bit values and their scales directly, each against a plain-torch reference (Triton's CPU
interpreter), and whole generations through an 8-bit cache against a full-precision one."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from storytransformer.engine.fastgen.kv_cache import FP8, KVLayer, StaticKVCache, quantize_fp8  # noqa: E402
from storytransformer.engine.fastgen.config import ModelConfig  # noqa: E402
from storytransformer.engine.fastgen.generate import Generator  # noqa: E402
from storytransformer.engine.fastgen.model import build_model  # noqa: E402

from .test_fused_kernels import interpret  # noqa: E402


# An 8-bit cache of S positions (2 sequences, 2 key/value heads of 32 dims, random e4m3 values and scales) and
# the names a decode check needs, for the scripts run in Triton's interpreter.
_FP8_DECODE_SETUP = """
import torch
from storytransformer.engine.fastgen import triton_decode
from storytransformer.engine.fastgen.attention import decode_attention
from storytransformer.engine.fastgen.config import ModelConfig
from storytransformer.engine.fastgen.kv_cache import FP8, StaticKVCache, quantize_fp8
g = torch.Generator().manual_seed(4)
S = {S}
kv = StaticKVCache(ModelConfig(n_layers=1, dim=64, intermediate=64, n_heads=8, n_kv_heads=2, head_dim=32, vocab=16),
                   S, batch=2, dtype=torch.float32, kv_dtype=FP8).layer(0)
for dst, scale in ((kv.k, kv.k_scale), (kv.v, kv.v_scale)):
    q8, s = quantize_fp8(torch.randn(2, 2, S, 32, generator=g) * 4)
    dst.view(torch.uint8).copy_(q8.view(torch.uint8)); scale.copy_(s)


class Cache:
    positions = torch.arange(S)
"""


def _decode_over_an_fp8_cache(S: int, body: str) -> str:
    """:data:`_FP8_DECODE_SETUP` for ``S`` positions, then ``body`` (indented as the test writes it)."""
    return _FP8_DECODE_SETUP.format(S=S) + textwrap.dedent(body)


def test_quantize_fp8_keeps_every_vector_within_e4m3_precision():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 50, 32, generator=g) * torch.logspace(-3, 3, 50)[None, None, :, None]  # wide ranges
    values, scale = quantize_fp8(x)
    assert values.dtype == FP8 and scale.shape == (3, 4, 50)
    back = values.float() * scale[..., None]
    # e4m3 has 3 mantissa bits: a relative step of 1/8 at most, half of it after rounding
    err = (back - x).abs() / x.abs().amax(-1, keepdim=True)
    assert err.max() <= 1 / 16 + 1e-6
    assert values.float().abs().amax(-1).min() == 448.0  # the largest value of each vector uses the whole range


def test_fp8_cache_takes_half_the_bytes_plus_its_scales():
    cfg = ModelConfig.tiny()
    bf16 = StaticKVCache(cfg, 64, dtype=torch.bfloat16)
    fp8 = StaticKVCache(cfg, 64, dtype=torch.bfloat16, kv_dtype=FP8)
    assert fp8.nbytes == bf16.nbytes // 2 + 2 * cfg.n_layers * cfg.n_kv_heads * 64 * 4
    assert fp8.nbytes == 64 * StaticKVCache.bytes_per_token(cfg, fp8=True)
    assert bf16.nbytes == 64 * StaticKVCache.bytes_per_token(cfg, 2)
    with pytest.raises(ValueError, match="stores"):
        StaticKVCache(cfg, 8, dtype=torch.float32, kv_dtype=torch.float16)


def test_torch_stage_writes_8_bit_values_and_scales_at_the_positions():
    from storytransformer.engine.fastgen import stages

    g = torch.Generator().manual_seed(1)
    B, n, hq, hkv, D, S, start = 2, 5, 4, 2, 16, 12, 3
    qkv = torch.randn(B, n, (hq + 2 * hkv) * D, generator=g)
    cos, sin = torch.ones(n, D), torch.zeros(n, D)  # no rotation: k and v are the projection's slices
    kv = StaticKVCache(ModelConfig.tiny(), S, batch=B, dtype=torch.float32, kv_dtype=FP8).layer(0)
    stages.qkv_rotary_cache(qkv, cos, sin, torch.tensor([start]), kv.k, kv.v, hq, hkv, k_scale=kv.k_scale,
                            v_scale=kv.v_scale)
    k_want = qkv[..., hq * D:(hq + hkv) * D].view(B, n, hkv, D).transpose(1, 2)
    k_back, _ = kv.dequantized(torch.float32)
    torch.testing.assert_close(k_back[:, :, start:start + n], k_want, atol=0.07 * k_want.abs().max().item(), rtol=0)
    assert kv.k_scale[:, :, :start].abs().max() == 0 and kv.k_scale[:, :, start + n:].abs().max() == 0


def test_fp8_generation_stays_close_to_the_full_precision_cache():
    cfg = ModelConfig.tiny()
    model = build_model(cfg, "cpu", torch.float32, seed=1, std=0.2)
    prompt = torch.randint(cfg.vocab, (1, 40), generator=torch.Generator().manual_seed(7))
    logits = {}
    for name, kv_dtype in (("full", None), ("fp8", FP8)):
        cache = StaticKVCache(cfg, 64, dtype=torch.float32, kv_dtype=kv_dtype)
        gen = Generator(model, cache, "eager", "matmul", chunk=16)
        gen.prefill(prompt)
        logits[name] = gen.last_logits
    p, q = (torch.log_softmax(logits[k], -1) for k in ("full", "fp8"))
    kl = (p.exp() * (p - q)).sum().item()
    assert 0 < kl < 0.05  # different (8-bit) but close
    assert logits["fp8"].argmax() == logits["full"].argmax()


def test_sdpa_refuses_an_fp8_cache_by_name():
    from storytransformer.engine.fastgen.attention import prefill_attention

    k = torch.zeros(1, 2, 8, 16).to(FP8)
    with pytest.raises(ValueError, match="fp8 KV cache.*sdpa_flash"):
        prefill_attention("sdpa_flash", torch.zeros(1, 4, 8, 16), k, k, 0, torch.ones(1, 2, 8), torch.ones(1, 2, 8))


def test_fp8_kernels_match_their_torch_references_in_the_interpreter():
    interpret("""
        import torch
        from storytransformer.engine.fastgen import stages
        from storytransformer.engine.fastgen.attention import decode_attention, eager_attention, prefill_attention
        from storytransformer.engine.fastgen.kv_cache import FP8, KVLayer, StaticKVCache
        from storytransformer.engine.fastgen.config import ModelConfig
        from storytransformer.engine.fastgen.generate import Generator
        from storytransformer.engine.fastgen.model import build_model
        g = torch.Generator().manual_seed(0)

        # the fused rotary + cache write against the torch stage, both writing 8 bits and a scale
        fused, plain = stages.select(True), stages.select(False)
        B, n, hq, hkv, D, S, start = 2, 7, 4, 2, 16, 20, 3
        qkv = torch.randn(B, n, (hq + 2 * hkv) * D, generator=g) * 3
        angles = torch.randn(S, D // 2, generator=g).repeat(1, 2)
        cos, sin = angles.cos()[start:start + n], angles.sin()[start:start + n]
        layers = [StaticKVCache(ModelConfig.tiny(), S, batch=B, dtype=torch.float32, kv_dtype=FP8).layer(0)
                  for _ in range(2)]
        qs = [ops.qkv_rotary_cache(qkv, cos, sin, torch.tensor([start]), kv.k, kv.v, hq, hkv, k_scale=kv.k_scale,
                                   v_scale=kv.v_scale) for ops, kv in zip((fused, plain), layers)]
        assert (qs[0] - qs[1]).abs().max() < 1e-5
        for a, b in zip(layers[0].dequantized(torch.float32), layers[1].dequantized(torch.float32)):
            # the same scales; values may differ by one e4m3 step where the two roundings tie
            assert (a - b).abs().max() <= 0.07 * b.abs().max(), (a - b).abs().max()
        torch.testing.assert_close(layers[0].k_scale, layers[1].k_scale, rtol=1e-6, atol=0)
        assert layers[0].k_scale[:, :, :start].abs().max() == 0

        # prefill attention over an 8-bit cache: q after `start` cached positions, grouped heads
        for start, n in ((0, 33), (40, 9), (17, 50)):
            q = torch.randn(2, 8, n, 32, generator=g)
            kv = StaticKVCache(ModelConfig(n_layers=1, dim=64, intermediate=64, n_heads=8, n_kv_heads=2,
                                           head_dim=32, vocab=16), start + n + 5, batch=2, dtype=torch.float32,
                               kv_dtype=FP8).layer(0)
            k, v = (torch.randn(2, 2, start + n + 5, 32, generator=g) * 4 for _ in range(2))
            for src, dst, scale in ((k, kv.k, kv.k_scale), (v, kv.v, kv.v_scale)):
                from storytransformer.engine.fastgen.kv_cache import quantize_fp8
                q8, s = quantize_fp8(src)
                dst.view(torch.uint8).copy_(q8.view(torch.uint8)); scale.copy_(s)
            part = kv.upto(start + n)
            got = prefill_attention("triton", q, part.k, part.v, start, part.k_scale, part.v_scale)
            kd, vd = part.dequantized(torch.float32)
            want = eager_attention(q, kd, vd)
            assert (got - want).abs().max() < 1e-4, (start, n, (got - want).abs().max())

            # decode over the whole cache, the valid length read on the device
            class Cache:
                positions = torch.arange(start + n + 5)
            q1 = torch.randn(2, 8, 1, 32, generator=g)
            length = torch.tensor([start + n])
            got = decode_attention("triton", q1, kv.k, kv.v, length, Cache, kv.k_scale, kv.v_scale)
            want = decode_attention("matmul", q1, kv.k, kv.v, length, Cache, kv.k_scale, kv.v_scale)
            assert (got - want).abs().max() < 1e-4, (start, n, (got - want).abs().max())

        # whole generations: fused stages, Triton prefill and decode over an 8-bit cache, against the
        # plain torch stages with eager prefill and matmul decode over the same 8-bit format
        cfg = ModelConfig.tiny()
        model = build_model(cfg, "cpu", torch.float32, seed=1, std=0.2)
        prompt = torch.randint(cfg.vocab, (2, 45), generator=torch.Generator().manual_seed(7))
        outs = []
        for fused_stages, prefill, decode, layered in ((False, "eager", "matmul", False), (True, "triton", "triton", False),
                                                      (True, "triton", "triton", True)):
            model.fused = fused_stages
            cache = StaticKVCache(cfg, 64, batch=2, dtype=torch.float32, kv_dtype=FP8)
            gen = Generator(model, cache, prefill, decode, chunk=16, layered=layered)
            outs.append(gen.generate(prompt, 6).tolist())
            gen.truncate(30)  # a resident 8-bit prefix, then the rest again
            assert gen.prefill(prompt[:, 30:]).tolist() == [row[:1] for row in outs[-1]]
        assert outs[0] == outs[1] == outs[2], outs
        print("ok")
    """)


def test_a_session_keeps_its_prefix_in_an_fp8_cache_and_names_what_it_needs():
    from storytransformer.engine.fastgen.resident_sequence import PrefixSession

    cfg = ModelConfig.tiny()
    model = build_model(cfg, "cpu", torch.float32, seed=1, std=0.2)
    prompt = torch.randint(cfg.vocab, (60,), generator=torch.Generator().manual_seed(3)).tolist()
    full = PrefixSession(model, 128, prefill_attn="eager", decode_attn="matmul", layered=False, cuda_graph=False)
    fp8 = PrefixSession(model, 128, prefill_attn="eager", decode_attn="matmul", layered=False, cuda_graph=False,
                        kv_cache="fp8")
    assert fp8.cache.quantized and fp8.cache.nbytes < full.cache.nbytes / 3
    first = fp8.generate(prompt, 5)
    again = fp8.generate(prompt[:50] + [1, 2, 3], 5)
    assert fp8.last == {"reused": 50, "prefilled": 3}  # the 8-bit prefix is reused
    assert first[0] == full.generate(prompt, 1)[0] and len(again) == 5
    with pytest.raises(ValueError, match="fp8 KV cache needs triton"):
        PrefixSession(model, 64, prefill_attn="sdpa_flash", kv_cache="fp8", cuda_graph=False)
    with pytest.raises(ValueError, match="unknown KV cache format"):
        PrefixSession(model, 64, kv_cache="int4", cuda_graph=False)


def test_fp8_decode_with_float16_products_matches_its_torch_reference_in_the_interpreter():
    """FP8_DOT = "f16" (the default): a bf16 query and the e4m3 keys and values meet in float16 (one conversion
    instruction for two values on the GPU); the same softmax as the float32 reference within rounding, with 64
    positions a block and with the 128 a long 8-bit cache reads."""
    interpret(_decode_over_an_fp8_cache(70, """
        q1 = torch.randn(2, 8, 1, 32, generator=g).to(torch.bfloat16)  # the model's dtype on a GPU
        length = torch.tensor([61])
        want = decode_attention("matmul", q1.float(), kv.k, kv.v, length, Cache, kv.k_scale, kv.v_scale)
        assert triton_decode.FP8_DOT == "f16"  # the default
        for long_from in (10 ** 9, 64):  # 64 positions a block, then (a "long" cache of 70) 128
            triton_decode.FP8_LONG_CAPACITY = long_from
            assert triton_decode.block_for(S, True) == (128 if long_from == 64 else 64)
            got = decode_attention("triton", q1, kv.k, kv.v, length, Cache, kv.k_scale, kv.v_scale)
            err = ((got.float() - want).abs().max() / want.abs().max()).item()
            assert 0 < err < 1e-2, err  # float16 probabilities, a bf16 output
        assert triton_decode.block_for(S, False) == triton_decode.BLOCK_N  # a bf16 cache keeps its block
        print("ok")
    """))

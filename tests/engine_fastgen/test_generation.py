"""The tiny model on the CPU: cached generation, chunked prefill and every available attention kernel
agree with a full recomputation without a cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from storytransformer.engine.fastgen.attention import (PREFILL_IMPLS, decode_attention, probes_for,  # noqa: E402
                                                       eager_attention, prefill_attention, probe_prefill)
from storytransformer.engine.fastgen.kv_cache import StaticKVCache  # noqa: E402
from storytransformer.engine.fastgen.config import ModelConfig  # noqa: E402
from storytransformer.engine.fastgen.generate import Generator  # noqa: E402
from storytransformer.engine.fastgen.model import build_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CFG = ModelConfig.tiny()


@pytest.fixture(scope="module")
def model():
    # a larger init spread than the benchmark's, so that greedy choices are far from ties
    return build_model(CFG, "cpu", torch.float32, seed=1, std=0.2)


@pytest.fixture(scope="module")
def prompt():
    return torch.randint(CFG.vocab, (1, 45), generator=torch.Generator().manual_seed(7))


@pytest.fixture(scope="module")
def reference(model, prompt):
    """Greedy tokens by recomputing the whole sequence at every step, without a cache."""
    seq, out = prompt, []
    for _ in range(12):
        nxt = model.reference_logits(seq)[:, -1].argmax(-1, keepdim=True)
        out.append(nxt)
        seq = torch.cat([seq, nxt], dim=1)
    return torch.cat(out, dim=1)


def cpu_prefill_impls() -> list[str]:
    return [impl for impl in PREFILL_IMPLS
            if probe_prefill(impl, "cpu", torch.float32, CFG.n_heads, CFG.n_kv_heads, CFG.head_dim) is None]


def test_eager_and_sdpa_flash_are_available_on_cpu():
    assert {"eager", "sdpa_flash"} <= set(cpu_prefill_impls())


def test_probe_names_a_missing_package():
    assert "not installed" in (probe_prefill("flash_attn", "cpu", torch.float32, 4, 2, 16) or "not installed")


@pytest.mark.parametrize("chunk", [7, 16, 64])
@pytest.mark.parametrize("impl", ["eager", "sdpa_flash"])
def test_static_cache_generation_matches_full_recomputation(model, prompt, reference, impl, chunk):
    assert impl in cpu_prefill_impls()
    cache = StaticKVCache(CFG, 64, device="cpu", dtype=torch.float32)
    out = Generator(model, cache, impl, "matmul", chunk=chunk).generate(prompt, 12)
    assert out.tolist() == reference.tolist()
    assert cache.length == prompt.shape[1] + 11


def test_chunked_prefill_equals_one_shot(model, prompt):
    one = StaticKVCache(CFG, 64, device="cpu", dtype=torch.float32)
    many = StaticKVCache(CFG, 64, device="cpu", dtype=torch.float32)
    logits_one = model.prefill(prompt, 0, one, "eager")
    logits_many = None
    for start in range(0, prompt.shape[1], 10):
        logits_many = model.prefill(prompt[:, start:start + 10], start, many, "eager")
    n = prompt.shape[1]
    torch.testing.assert_close(logits_many, logits_one, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(many.k[:, :, :, :n], one.k[:, :, :, :n], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(many.v[:, :, :, :n], one.v[:, :, :, :n], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("native_gqa", [True, False])
def test_prefill_kernels_agree_with_and_without_a_cached_prefix(native_gqa, monkeypatch):
    impls = cpu_prefill_impls()
    assert "sdpa_flash" in probes_for("cpu").gqa_native  # torch's CPU flash kernel takes enable_gqa
    if not native_gqa:
        monkeypatch.setattr(probes_for("cpu"), "gqa_native", set())  # the repeat_kv path other backends take
    g = torch.Generator().manual_seed(3)
    for start, n in ((0, 20), (13, 9)):
        q = torch.randn(2, CFG.n_heads, n, CFG.head_dim, generator=g)
        k, v = (torch.randn(2, CFG.n_kv_heads, start + n, CFG.head_dim, generator=g) for _ in range(2))
        want = eager_attention(q, k, v)
        for impl in impls:
            torch.testing.assert_close(prefill_attention(impl, q, k, v, start), want, rtol=1e-4, atol=1e-4)


def test_eager_attention_is_causal_aligned_to_the_end():
    """The last query sees every key; the first of 3 new queries after 5 cached sees 6 of them."""
    q = torch.zeros(1, 1, 3, 2)  # equal scores: outputs are plain means of the visible values
    k = torch.zeros(1, 1, 8, 2)
    v = torch.arange(8.0).view(1, 1, 8, 1).expand(1, 1, 8, 2)
    out = eager_attention(q, k, v)[0, 0, :, 0]
    assert out.tolist() == pytest.approx([2.5, 3.0, 3.5])


def test_decode_matmul_ignores_positions_past_the_length():
    class Cache:
        positions = torch.arange(10)

    q = torch.randn(1, 4, 1, 16)
    k, v = torch.randn(1, 2, 10, 16), torch.randn(1, 2, 10, 16)
    got = decode_attention("matmul", q, k, v, torch.tensor([6]), Cache)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 6:], v2[:, :, 6:] = 1e4, -1e4  # finite: the cache is zeroed, never NaN (0 * NaN is NaN)
    assert torch.equal(decode_attention("matmul", q, k2, v2, torch.tensor([6]), Cache), got)
    torch.testing.assert_close(got, eager_attention(q, k[:, :, :6], v[:, :, :6])[:, :, -1:], rtol=1e-5, atol=1e-5)


def test_warm_prefix_reuse_matches_a_cold_prefill(model, prompt):
    """Truncating to a resident prefix and prefilling a new suffix gives the cold result."""
    cache = StaticKVCache(CFG, 64, device="cpu", dtype=torch.float32)
    gen = Generator(model, cache, "sdpa_flash", chunk=16)
    gen.prefill(prompt[:, :30])
    gen.prefill(torch.randint(CFG.vocab, (1, 10)))  # another request after the prefix
    gen.truncate(30)
    warm = gen.prefill(prompt[:, 30:])
    cold = Generator(model, StaticKVCache(CFG, 64, device="cpu", dtype=torch.float32), "eager").prefill(prompt)
    assert torch.equal(warm, cold)


def test_capacity_is_enforced(model, prompt):
    gen = Generator(model, StaticKVCache(CFG, 48, device="cpu", dtype=torch.float32), "eager")
    with pytest.raises(ValueError, match="capacity"):
        gen.generate(prompt, 10)


def test_cuda_graph_is_not_used_on_cpu(model):
    assert not Generator(model, StaticKVCache(CFG, 16, device="cpu", dtype=torch.float32), cuda_graph=True).use_graph


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graph_decoding_matches_eager_decoding():
    cuda_model = build_model(CFG, "cuda", torch.float32, seed=1, std=0.2)
    prompt = torch.randint(CFG.vocab, (1, 45), generator=torch.Generator().manual_seed(7)).cuda()
    outs = []
    for graph in (False, True):
        cache = StaticKVCache(CFG, 64, device="cuda", dtype=torch.float32)
        outs.append(Generator(cuda_model, cache, "eager", cuda_graph=graph).generate(prompt, 12).tolist())
    assert outs[0] == outs[1]


TRITON_CHECK = textwrap.dedent("""
    import torch
    from storytransformer.engine.fastgen.attention import decode_attention
    from storytransformer.engine.fastgen.kv_cache import StaticKVCache
    from storytransformer.engine.fastgen.config import ModelConfig
    from storytransformer.engine.fastgen.generate import Generator
    from storytransformer.engine.fastgen.model import build_model

    class Cache:
        positions = torch.arange(300)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 28, 1, 16, generator=g)
    k, v = (torch.randn(1, 4, 300, 16, generator=g) for _ in range(2))
    for length in (1, 64, 65, 200, 300):
        n = torch.tensor([length])
        err = (decode_attention("triton", q, k, v, n, Cache) - decode_attention("matmul", q, k, v, n, Cache)).abs().max()
        assert err < 1e-5, (length, err)
    cfg = ModelConfig.tiny()
    model = build_model(cfg, "cpu", torch.float32, seed=1, std=0.2)
    prompt = torch.randint(cfg.vocab, (1, 45), generator=torch.Generator().manual_seed(7))
    outs = [Generator(model, StaticKVCache(cfg, 64, device="cpu", dtype=torch.float32), "eager", impl).generate(prompt, 6)
            for impl in ("matmul", "triton")]
    assert outs[0].tolist() == outs[1].tolist(), outs
    print("ok")
""")


def _interpreted(script: str) -> None:
    """Run ``script`` in a fresh process under Triton's CPU interpreter; it prints "ok" when its checks pass."""
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]


def test_triton_split_k_decoding_matches_matmul_decoding_in_the_interpreter():
    _interpreted(TRITON_CHECK)


@pytest.mark.parametrize("impl", ["eager", "sdpa_flash"])
def test_layer_major_prefill_matches_full_recomputation(model, prompt, reference, impl):
    cache = StaticKVCache(CFG, 64, device="cpu", dtype=torch.float32)
    out = Generator(model, cache, impl, "matmul", chunk=16, layered=True).generate(prompt, 12)
    assert out.tolist() == reference.tolist()


def test_layer_major_prefill_after_a_resident_prefix_and_in_a_batch(model, prompt):
    batch = torch.cat([prompt, prompt.flip(1)])
    tokens = {}
    for layered in (False, True):
        cache = StaticKVCache(CFG, 64, batch=2, device="cpu", dtype=torch.float32)
        gen = Generator(model, cache, "eager", "matmul", chunk=16, layered=layered)
        first = gen.prefill(batch[:, :20])
        rest = gen.prefill(batch[:, 20:])  # after 20 cached positions
        tokens[layered] = (first.tolist(), rest.tolist(), cache.k.clone())
    assert tokens[True][:2] == tokens[False][:2]
    assert torch.allclose(tokens[True][2], tokens[False][2], atol=1e-5)  # the same keys end up in the cache


MERGE_CHECK = textwrap.dedent("""
    import torch
    from storytransformer.engine.fastgen import triton_decode as td

    g = torch.Generator().manual_seed(0)
    for B, Hq, splits, D in ((1, 4, 5, 32), (2, 6, 17, 64), (1, 28, 103, 128)):
        o = torch.randn(B, Hq, splits, D, generator=g)
        m = torch.randn(B, Hq, splits, generator=g) * 3
        lse = torch.rand(B, Hq, splits, generator=g) + 0.5
        m[..., splits // 2:] = float("-inf")  # empty slices past the length: no weight, zero partials
        o[..., splits // 2:, :] = 0.0
        lse[..., splits // 2:] = 0.0
        for dtype in (torch.float32, torch.bfloat16):
            got = td.merge_splits(o, m, lse, dtype).float()
            want = td.merge_splits_torch(o, m, lse, dtype).float()
            tol = 1e-5 if dtype == torch.float32 else 1e-2
            assert torch.allclose(got, want, atol=tol, rtol=tol), (B, Hq, splits, D, (got - want).abs().max())
    # flash_decode with either merge, a cache longer than its valid length (empty slices)
    q = torch.randn(1, 8, 1, 32, generator=g)
    k = torch.randn(1, 2, 300, 32, generator=g)
    v = torch.randn(1, 2, 300, 32, generator=g)
    length = torch.tensor([77])
    outs = {}
    for merge in ("torch", "triton"):
        td.MERGE = merge
        outs[merge] = td.flash_decode(q, k, v, length, block_n=16)
    td.SPREAD = False  # slices of the capacity: the same attention
    outs["capacity slices"] = td.flash_decode(q, k, v, length, block_n=16)
    td.SPREAD = True
    assert torch.allclose(outs["capacity slices"], outs["triton"], atol=1e-5)
    for n in (1, 2, 16, 17, 299, 300):  # the valid length spread over the slices, from one position to all
        got = td.flash_decode(q, k, v, torch.tensor([n]), block_n=16)
        want = torch.softmax((q @ k[:, :, :n].repeat_interleave(4, 1).transpose(-1, -2)) / 32 ** 0.5, -1) \
            @ v[:, :, :n].repeat_interleave(4, 1)
        assert torch.allclose(got, want, atol=1e-4), (n, (got - want).abs().max())
        td.MIN_SLICE = 64  # a short context fills fewer, longer slices; the merge skips the empty ones
        got = td.flash_decode(q, k, v, torch.tensor([n]), block_n=16)
        td.MIN_SLICE = 16
        assert torch.allclose(got, want, atol=1e-4), ("MIN_SLICE 64", n, (got - want).abs().max())
    ref = torch.softmax((q @ k[:, :, :77].repeat_interleave(4, 1).transpose(-1, -2)) / 32 ** 0.5, -1) \\
        @ v[:, :, :77].repeat_interleave(4, 1)
    assert torch.allclose(outs["triton"], outs["torch"], atol=1e-5), (outs["triton"] - outs["torch"]).abs().max()
    assert torch.allclose(outs["triton"], ref, atol=1e-4), (outs["triton"] - ref).abs().max()
    print("ok")
""")


def test_the_one_kernel_merge_of_decode_slices_matches_the_torch_merge_in_the_interpreter():
    _interpreted(MERGE_CHECK)

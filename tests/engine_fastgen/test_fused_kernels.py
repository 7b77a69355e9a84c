"""The Triton kernels (prefill attention, fused norms, rotary with cache writes, SwiGLU) against their
plain torch references, and whole generations through them, in Triton's CPU interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[2]


def interpret(code: str) -> None:
    """Run ``code`` with TRITON_INTERPRET=1 (it must be set before triton is imported)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=900)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.stdout[-2000:], r.stderr[-3000:])


def test_triton_prefill_attention_matches_eager_with_grouped_heads_and_cached_prefixes():
    interpret("""
        import torch
        from storytransformer.engine.fastgen.attention import eager_attention
        from storytransformer.engine.fastgen.triton_prefill import flash_prefill
        g = torch.Generator().manual_seed(0)
        for n, L, hq, hkv in ((40, 40, 8, 2), (37, 100, 8, 2), (16, 16, 4, 4), (5, 77, 6, 1), (1, 33, 8, 2)):
            q = torch.randn(1, n, hq, 16, generator=g).transpose(1, 2)  # the projection's transposed layout
            k, v = (torch.randn(1, hkv, L + 10, 16, generator=g)[:, :, :L] for _ in range(2))  # cache slices
            got, want = flash_prefill(q, k, v), eager_attention(q, k, v)
            assert got.shape == want.shape and (got - want).abs().max() < 1e-5, (n, L, (got - want).abs().max())
        try:
            flash_prefill(torch.zeros(1, 4, 3, 12), torch.zeros(1, 2, 3, 12), torch.zeros(1, 2, 3, 12))
        except ValueError as exc:
            assert "power-of-two head_dim" in str(exc)
        else:
            raise AssertionError("head_dim 12 accepted")
        print("ok")
    """)


def test_fused_stages_match_the_torch_stages():
    interpret("""
        import torch
        from storytransformer.engine.fastgen import stages
        fused, plain = stages.select(True), stages.select(False)
        g = torch.Generator().manual_seed(0)
        x, r, w = torch.randn(2, 5, 48, generator=g), torch.randn(2, 5, 48, generator=g), torch.randn(48, generator=g)
        assert (fused.rms_norm(x, w, 1e-5) - plain.rms_norm(x, w, 1e-5)).abs().max() < 1e-5
        xf, xp = x.clone(), x.clone()
        yf, yp = fused.add_rms_norm(xf, r, w, 1e-5), plain.add_rms_norm(xp, r, w, 1e-5)
        assert torch.equal(xf, x + r) and torch.equal(xp, x + r)  # the residual is updated in place
        assert (yf - yp).abs().max() < 1e-5
        gu = torch.randn(3, 4, 80, generator=g)
        assert (fused.silu_mul(gu) - plain.silu_mul(gu)).abs().max() < 1e-6
        B, n, hq, hkv, D, S, start = 2, 7, 4, 2, 16, 20, 3
        qkv = torch.randn(B, n, (hq + 2 * hkv) * D, generator=g)
        angles = torch.randn(S, D // 2, generator=g).repeat(1, 2)
        cos, sin = angles.cos()[start:start + n], angles.sin()[start:start + n]
        pos = torch.tensor([start])
        caches = [(torch.zeros(B, hkv, S, D), torch.zeros(B, hkv, S, D)) for _ in range(2)]
        qs = [ops.qkv_rotary_cache(qkv, cos, sin, pos, k, v, hq, hkv) for ops, (k, v) in zip((fused, plain), caches)]
        assert qs[0].shape == (B, hq, n, D) and (qs[0] - qs[1]).abs().max() < 1e-5
        for a, b in zip(*caches):
            assert (a - b).abs().max() < 1e-5
            assert a[:, :, :start].abs().max() == 0 and a[:, :, start + n:].abs().max() == 0  # nothing else written
        out = torch.empty(B, n, hq, D)
        q = fused.qkv_rotary_cache(qkv, cos, sin, pos, *caches[0], hq, hkv, out=out)
        assert q.data_ptr() == out.data_ptr() and (q - qs[1]).abs().max() < 1e-5
        print("ok")
    """)


def test_generation_agrees_across_stages_prefill_modes_and_attention():
    interpret("""
        import torch
        from storytransformer.engine.fastgen.kv_cache import StaticKVCache
        from storytransformer.engine.fastgen.config import ModelConfig
        from storytransformer.engine.fastgen.generate import Generator
        from storytransformer.engine.fastgen.model import build_model
        from storytransformer.engine.fastgen.attention import probe_prefill
        cfg = ModelConfig.tiny()
        assert probe_prefill("triton", "cpu", torch.float32, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim) is None
        model = build_model(cfg, "cpu", torch.float32, seed=1, std=0.2)
        prompt = torch.randint(cfg.vocab, (2, 45), generator=torch.Generator().manual_seed(7))
        seen = set()
        for fused in (False, True):
            for impl in ("eager", "triton"):
                for layered in (False, True):
                    model.fused = fused
                    cache = StaticKVCache(cfg, 64, batch=2, device="cpu", dtype=torch.float32)
                    gen = Generator(model, cache, impl, "triton", chunk=16, layered=layered)
                    out = gen.generate(prompt, 6)
                    gen.truncate(30)  # a resident prefix, then the rest again
                    again = gen.prefill(prompt[:, 30:])
                    assert again.tolist() == out[:, :1].tolist()
                    seen.add(tuple(map(tuple, out.tolist())))
        assert len(seen) == 1, seen
        print("ok")
    """)

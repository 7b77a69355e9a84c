"""The FP8 prefill benchmark's row quantiser: the Triton kernel (in Triton's CPU interpreter) against the
torch reference, and the reference itself against the bf16 rows it encodes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.gpu.fp8_prefill import E4M3_MAX, FP8Linear, quantize_rows  # noqa: E402


def test_rows_are_scaled_to_the_e4m3_range_and_decode_close_to_the_input():
    x = torch.randn(6, 300, generator=torch.Generator().manual_seed(0)).bfloat16()
    x[:, :3] *= 50  # outlier channels set each row's scale
    x[4] = 0  # an all-zero row: a tiny scale, codes 0, no NaN
    q, s = quantize_rows(x)
    assert q.dtype == torch.float8_e4m3fn and s.shape == (6, 1) and s.dtype == torch.float32
    assert torch.allclose(q.float().abs().amax(1)[[0, 1, 2, 3, 5]], torch.full((5,), E4M3_MAX))
    back = q.float() * s
    assert not back.isnan().any() and torch.equal(back[4], torch.zeros(300))
    rel = (back - x.float()).norm(dim=1) / x.float().norm(dim=1).clamp_min(1e-30)
    assert (rel[[0, 1, 2, 3, 5]] < 0.05).all(), rel  # 3 mantissa bits: a few % of each row


def test_fp8_linear_module_keeps_the_layer_shape_and_bias():
    lin = torch.nn.Linear(64, 24, bias=True, dtype=torch.bfloat16)
    m = FP8Linear(lin)
    assert m.w8.shape == (24, 64) and m.scale.shape == (24, 1) and torch.equal(m.bias, lin.bias.data)
    back = m.w8.float() * m.scale
    assert (back - lin.weight.float()).norm() / lin.weight.float().norm() < 0.05


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_triton_row_quantiser_matches_the_torch_reference():
    code = """
        import torch
        from benchmarks.gpu.fp8_prefill import quantize_rows, quantize_rows_fused
        x = torch.randn(5, 3000, generator=torch.Generator().manual_seed(1)).bfloat16()  # 3000: a partial block
        x[:, :4] *= 20
        q1, s1 = quantize_rows(x)
        q2, s2 = quantize_rows_fused(x)
        assert q2.dtype == torch.float8_e4m3fn and q2.shape == (5, 3000) and s2.shape == (5, 1)
        assert torch.equal(s1, s2)
        # the interpreter's e4m3 cast rounds some values differently from torch (about 2 % of the codes here,
        # decoding at 6-9 % row error against the reference's 2-3 %; on the H200 about one code in a million
        # differed): the scales must be exact, the codes the same almost everywhere and close to the rows
        a, b = q1.float(), q2.float()
        assert (a != b).float().mean() < 0.05
        rel = lambda q, s: ((q * s - x.float()).norm(dim=1) / x.float().norm(dim=1)).max()
        assert rel(a, s1) < 0.05 and rel(b, s2) < 0.1
        print("ok")
    """
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.stdout[-2000:], r.stderr[-3000:])

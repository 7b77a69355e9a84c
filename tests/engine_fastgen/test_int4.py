"""The 4-bit weight format: quantisation error bounds, the planar packing against a plain-torch
reference, the Triton decode and dequantise kernels in Triton's CPU interpreter, and Int4Linear inside a
small fastgen model."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from storytransformer.engine.fastgen.kv_cache import StaticKVCache  # noqa: E402
from storytransformer.engine.fastgen.config import ModelConfig  # noqa: E402
from storytransformer.engine.fastgen.generate import Generator  # noqa: E402
from storytransformer.engine.fastgen.int4 import (Int4Linear, dequantize_int4, quantize_int4,  # noqa: E402
                                                  quantize_linears_int4, weights_bytes)
from storytransformer.engine.fastgen.model import build_model  # noqa: E402

# dims that are multiples of the 128-input packing block (the tiny config's 64 is not)
CFG = ModelConfig(n_layers=2, dim=128, intermediate=256, n_heads=4, n_kv_heads=2, head_dim=32, vocab=256,
                  rope_theta=10_000.0, name="int4-test")


def naive_codes(w: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Codes [N, K] in input order, per-group scale and min, written the obvious way."""
    N, K = w.shape
    g = w.float().view(N, K // group, group)
    lo, hi = g.amin(-1), g.amax(-1)
    s, z = ((hi - lo) / 15).bfloat16(), lo.bfloat16()
    codes = ((g - z.float()[..., None]) / s.float()[..., None]).round().clamp(0, 15)
    return codes.view(N, K).to(torch.int64), s, z


@pytest.mark.parametrize("group", [128, 256])
def test_round_trip_error_is_at_most_half_a_step(group):
    w = torch.randn(40, 512, generator=torch.Generator().manual_seed(0)) * 0.02
    w[3, :group] += 0.5  # a group that is not centred on zero
    w[5, :group] = 0.01  # an all-equal group: scale 0, every weight exactly the minimum
    qweight, scales, mins = quantize_int4(w.bfloat16(), group)
    assert qweight.dtype == torch.int32 and qweight.shape == (64, 40)  # [K / 8, N]: output features contiguous
    assert scales.shape == mins.shape == (512 // group, 40) and scales.dtype == torch.bfloat16
    back = dequantize_int4(qweight, scales, mins, group)
    step = scales.float().t().repeat_interleave(group, dim=1)  # [N, K] like the weight
    low = mins.float().t().abs().repeat_interleave(group, dim=1)
    err = (back - w.bfloat16().float()).abs()
    # half a step, plus the bf16 rounding of the scale (code 15 * 2^-8 relative) and of the minimum
    assert (err <= 0.5 * step + 15 * step * 2 ** -8 + low * 2 ** -8 + 1e-7).all()
    assert torch.equal(back[5, :group], torch.full((group,), 0.01).bfloat16().float())
    rel = (back - w).norm() / w.norm()
    assert 0.02 < rel < 0.12, rel  # 4 bits: noticeably lossy, far from useless


def test_packing_is_planar_within_each_block_of_128():
    w = torch.randn(6, 256, generator=torch.Generator().manual_seed(1))
    qweight, scales, mins = quantize_int4(w, 128)
    codes, s, z = naive_codes(w, 128)
    assert torch.equal(scales, s.t()) and torch.equal(mins, z.t())
    words = qweight.to(torch.int64) & 0xFFFFFFFF
    for n in range(6):
        for k in (0, 1, 15, 16, 17, 127, 128, 200, 255):
            block, j, i = k // 128, (k % 128) // 16, k % 16
            nibble = (words[block * 16 + i, n] >> (4 * j)) & 0xF
            assert int(nibble) == int(codes[n, k]), (n, k)


def test_bad_group_sizes_are_refused():
    with pytest.raises(ValueError, match="multiple of 128"):
        quantize_int4(torch.zeros(4, 256), 64)
    with pytest.raises(ValueError, match="in_features=384"):
        quantize_int4(torch.zeros(4, 384), 256)


def test_int4_linear_on_the_cpu_matches_the_dequantised_product():
    lin = torch.nn.Linear(256, 96, bias=True, dtype=torch.bfloat16)
    q = Int4Linear.from_linear(lin, 128)
    x = torch.randn(2, 3, 256, generator=torch.Generator().manual_seed(2)).bfloat16()
    want = x.float() @ dequantize_int4(q.qweight, q.scales, q.mins, 128).T + lin.bias.float()
    got = q(x)
    assert got.shape == (2, 3, 96) and got.dtype == torch.bfloat16
    assert (got.float() - want).abs().max() < 2e-2 * want.abs().max()
    exact = x.float() @ lin.weight.float().T + lin.bias.float()
    assert (got.float() - exact).norm() / exact.norm() < 0.15  # still the same layer
    assert weights_bytes(q) < 0.3 * weights_bytes(lin)


def test_model_layers_are_replaced_and_logits_stay_close_to_bf16():
    base = build_model(CFG, "cpu", torch.bfloat16, seed=1)
    quant = build_model(CFG, "cpu", torch.bfloat16, seed=1)
    before = sum(weights_bytes(layer) for layer in quant.layers)
    assert quantize_linears_int4(quant) == 4 * CFG.n_layers  # wqkv, wo, w13, w2 in every layer
    assert not any(type(m) is torch.nn.Linear for layer in quant.layers for m in layer.modules())
    assert type(quant.output) is torch.nn.Linear  # the head stays bf16
    assert isinstance(quant.layers[0].attention.wqkv, Int4Linear) and quant.layers[0].attention.wqkv.bias is not None
    assert sum(weights_bytes(layer) for layer in quant.layers) < 0.3 * before
    prompt = torch.randint(CFG.vocab, (1, 40), generator=torch.Generator().manual_seed(3))
    logits = [m.prefill(prompt, 0, StaticKVCache(CFG, 64, device="cpu", dtype=torch.bfloat16), "eager")
              for m in (base, quant)]
    err = (logits[0] - logits[1]).norm() / logits[0].norm()
    assert err < 0.15, err  # quantisation noise, not a different model
    tokens = Generator(quant, StaticKVCache(CFG, 64, device="cpu", dtype=torch.bfloat16), "eager", "matmul",
                       chunk=16).generate(prompt, 4)
    assert tokens.shape == (1, 4) and int(tokens.max()) < CFG.vocab


# ---- the Triton kernels, in Triton's CPU interpreter ------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")


def interpret(code: str) -> None:
    """Run ``code`` with TRITON_INTERPRET=1 (it must be set before triton is imported)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=900)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.stdout[-2000:], r.stderr[-3000:])


@needs_triton
def test_triton_decode_kernel_matches_the_reference_for_1_to_8_rows_and_every_tile():
    interpret("""
        import torch
        from storytransformer.engine.fastgen.int4 import quantize_int4, dequantize_int4
        from storytransformer.engine.fastgen import triton_int4 as ti
        g = torch.Generator().manual_seed(0)
        DC = ti.DecodeConfig
        for N, K, group, bias in ((40, 512, 128, True), (24, 384, 128, False), (16, 1024, 256, True)):
            w = (torch.randn(N, K, generator=g) * 0.02).bfloat16()
            qw, s, z = quantize_int4(w, group)
            ref_w = dequantize_int4(qw, s, z, group)
            b = (torch.randn(N, generator=g) * 0.1).bfloat16() if bias else None
            for M in range(1, 9):
                x = torch.randn(M, K, generator=g).bfloat16()
                want = x.float() @ ref_w.T + (b.float() if b is not None else 0)
                # fma and tensor-core tiles, wider than N or not, K split into float32 partials (with an
                # uneven last split: 3 blocks per split of 4 or 8) or not, the default
                # and the variants with the 8 nibble planes as a tensor axis (fma: one row only)
                planes = [DC(True, 16, 3, planes=True), DC(True, 64, 1, planes=True)]
                if M == 1:
                    planes += [DC(False, 16, 3, planes=True), DC(False, 64, 0, planes=True)]
                for cfg in [DC(False, 16, 1), DC(False, 64, 3), DC(False, 32, 8), DC(True, 16, 3),
                            DC(True, 64, 8), None] + planes:
                    got = ti.int4_decode(x, qw, s, z, group, b, config=cfg)
                    assert got.shape == (M, N) and got.dtype == torch.bfloat16
                    err = (got.float() - want).abs().max() / want.abs().max()
                    assert err < 1e-2, (N, K, M, cfg, float(err))
        # a strided view of the activations (one row of a wider buffer) is read in place
        xs = torch.randn(3, 2 * 512, generator=g).bfloat16()[:, :512]
        w = (torch.randn(40, 512, generator=g) * 0.02).bfloat16()
        qw, s, z = quantize_int4(w, 128)
        want = xs.float() @ dequantize_int4(qw, s, z, 128).T
        assert ((ti.int4_decode(xs, qw, s, z, 128).float() - want).abs().max() / want.abs().max()) < 1e-2
        print("ok")
    """)


@needs_triton
def test_triton_dequantise_and_prefill_match_the_reference():
    interpret("""
        import torch
        from storytransformer.engine.fastgen.int4 import quantize_int4, dequantize_int4
        from storytransformer.engine.fastgen import triton_int4 as ti
        g = torch.Generator().manual_seed(1)
        w = (torch.randn(72, 640, generator=g) * 0.02).bfloat16()
        qw, s, z = quantize_int4(w, 128)
        ref_w = dequantize_int4(qw, s, z, 128)
        got_w = ti.int4_dequantize_t(qw, s, z, 128, block_n=64).t()  # 72 is not a multiple of 64
        assert got_w.dtype == torch.bfloat16 and got_w.shape == (72, 640)
        # one bf16 step at most (the interpreter truncates where the GPU rounds to nearest)
        assert ((got_w.float() - ref_w).abs() <= ref_w.abs() * 2 ** -7 + 1e-9).all()
        x = torch.randn(37, 640, generator=g).bfloat16()
        b = torch.randn(72, generator=g).bfloat16()
        want = x.float() @ ref_w.T + b.float()
        got = ti.int4_prefill(x, qw, s, z, 128, b)
        assert got.shape == (37, 72) and (got.float() - want).abs().max() < 2e-2 * want.abs().max()
        print("ok")
    """)


@needs_triton
def test_masked_planes_and_the_fused_split_sum_match_the_reference_and_leave_the_counters_at_zero():
    interpret("""
        import torch
        from storytransformer.engine.fastgen.int4 import Int4Linear, quantize_int4, dequantize_int4
        from storytransformer.engine.fastgen import triton_int4 as ti
        g = torch.Generator().manual_seed(5)
        DC = ti.DecodeConfig
        for N, K, group, bias in ((40, 512, 128, True), (24, 384, 128, False), (16, 1024, 256, True)):
            w = (torch.randn(N, K, generator=g) * 0.02).bfloat16()
            w[:, :128] += 0.3  # a group far from zero: large codes in every plane, nibbles 5..7 included
            qw, s, z = quantize_int4(w, group)
            ref_w = dequantize_int4(qw, s, z, group)
            b = (torch.randn(N, generator=g) * 0.1).bfloat16() if bias else None
            counters = torch.zeros(8, dtype=torch.int32)
            for M in (1, 3, 8):
                x = torch.randn(M, K, generator=g).bfloat16()
                want = x.float() @ ref_w.T + (b.float() if b is not None else 0)
                cfgs = [DC(False, 16, 1, masked=True), DC(False, 64, 3, masked=True),
                        DC(False, 16, 1, masked=True, fused_sum=True), DC(False, 32, 3, masked=True, fused_sum=True),
                        DC(True, 16, 3, fused_sum=True), DC(True, 64, 1, planes=True, fused_sum=True)]
                if M == 1:
                    cfgs += [DC(False, 16, 3, planes=True, fused_sum=True), DC(False, 64, 0, planes=True, masked=True),
                             DC(False, 16, 3, planes=True, masked=True, fused_sum=True)]
                for cfg in cfgs:
                    for own in (None, counters):
                        for _ in range(2):  # a second call finds the counters reset
                            got = ti.int4_decode(x, qw, s, z, group, b, config=cfg, counters=own)
                            assert got.shape == (M, N) and got.dtype == torch.bfloat16
                            err = (got.float() - want).abs().max() / want.abs().max()
                            assert err < 1e-2, (N, K, M, cfg, float(err))
                    assert int(counters.abs().sum()) == 0, counters
                    assert all(int(c.abs().sum()) == 0 for c in ti._COUNTERS.values())
        assert torch.device("cpu") in ti._COUNTERS  # the calls without counters used the shared ones
        # Int4Linear brings its own counters
        lin = torch.nn.Linear(256, 48, bias=True, dtype=torch.bfloat16)
        q = Int4Linear.from_linear(lin, 128)
        assert q.counters.shape == (3,) and "counters" not in q.state_dict()
        print("ok")
    """)


def test_an_input_width_that_is_not_a_multiple_of_128_is_zero_padded():
    """SmolLM2's 576 inputs: the weight is padded to 640, the padded inputs count as 0."""
    with pytest.raises(ValueError, match="in_features=576"):
        quantize_int4(torch.zeros(4, 576), 128)  # without pad the format still refuses it
    w = torch.randn(24, 576, generator=torch.Generator().manual_seed(7)) * 0.02
    qweight, scales, mins = quantize_int4(w.bfloat16(), 128, pad=True)
    assert qweight.shape == (80, 24) and scales.shape == (5, 24)
    back = dequantize_int4(qweight, scales, mins, 128)
    assert back.shape == (24, 640)
    step, low = scales[-1].float()[:, None], mins[-1].float().abs()[:, None]
    assert (back[:, 576:].abs() <= 0.5 * step + low * 2 ** -8 + 1e-7).all()  # the padding quantises to about 0
    assert (back[:, :576] - w).norm() / w.norm() < 0.12
    lin = torch.nn.Linear(576, 24, bias=True, dtype=torch.bfloat16)
    q = Int4Linear.from_linear(lin, 128)
    assert q.in_features == 576 and q.qweight.shape == (80, 24)
    x = torch.randn(3, 576, generator=torch.Generator().manual_seed(8)).bfloat16()
    want = x.float() @ lin.weight.float().T + lin.bias.float()
    assert (q(x).float() - want).norm() / want.norm() < 0.15


@needs_triton
def test_triton_kernels_read_padded_inputs_as_zero():
    interpret("""
        import torch
        from storytransformer.engine.fastgen.int4 import quantize_int4, dequantize_int4
        from storytransformer.engine.fastgen import triton_int4 as ti
        g = torch.Generator().manual_seed(9)
        DC = ti.DecodeConfig
        w = (torch.randn(40, 576, generator=g) * 0.02).bfloat16()
        qw, s, z = quantize_int4(w, 128, pad=True)
        ref_w = dequantize_int4(qw, s, z, 128)[:, :576]
        big = torch.randn(8, 1000, generator=g).bfloat16()  # the row after 576 holds other values
        for M in (1, 4):
            x = big[:M, :576]
            want = x.float() @ ref_w.T
            cfgs = [DC(False, 16, 1), DC(True, 16, 3), DC(True, 64, 1, planes=True), DC(False, 32, 2, masked=True)]
            if M == 1:
                cfgs += [DC(False, 16, 3, planes=True), DC(False, 64, 0, planes=True, masked=True, fused_sum=True)]
            for cfg in cfgs:
                got = ti.int4_decode(x, qw, s, z, 128, config=cfg)
                err = (got.float() - want).abs().max() / want.abs().max()
                assert err < 1e-2, (M, cfg, float(err))
        x = torch.randn(37, 576, generator=g).bfloat16()
        got = ti.int4_prefill(x, qw, s, z, 128)
        want = x.float() @ ref_w.T
        assert got.shape == (37, 40) and (got.float() - want).abs().max() < 2e-2 * want.abs().max()
        print("ok")
    """)


def _ptx_consts(asm: str) -> tuple[dict[str, int], list[tuple[int, int]], list[int]]:
    """The mov.b32 constants, the lop3 (mask, magic) pairs and the shift amounts of an inline-PTX string."""
    import re
    movs = {m[0]: int(m[1], 16) for m in re.findall(r"mov\.b32 (\w+), 0x([0-9A-Fa-f]+);", asm)}
    lop3 = [(int(a, 16), int(b, 16))
            for a, b in re.findall(r"lop3\.b32 \S+, \S+, 0x([0-9A-F]+), 0x([0-9A-F]+), 0xEA;", asm)]
    shifts = [int(v) for v in re.findall(r"shr\.u32 q, \$4, (\d+);", asm)]
    return movs, lop3, shifts


def _halves(bits: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """int64 tensor of 32-bit words -> (low half, high half) read as ``dtype`` (bf16 or f16), as float32."""
    lo = (bits & 0xFFFF).to(torch.int32).to(torch.int16)  # wraps like a bit copy
    hi = ((bits >> 16) & 0xFFFF).to(torch.int32).to(torch.int16)
    return lo.view(dtype).float(), hi.view(dtype).float()


def _fma16(v: torch.Tensor, a: int, b: int, dtype: torch.dtype) -> torch.Tensor:
    """fma.rn of packed halves with constants a, b (both halves equal), rounded once to ``dtype``."""
    ka = torch.tensor([a & 0xFFFF], dtype=torch.int32).to(torch.int16).view(dtype).double()
    kb = torch.tensor([b & 0xFFFF], dtype=torch.int32).to(torch.int16).view(dtype).double()
    return (v.double() * ka + kb).to(dtype).float()


def test_two_codes_an_instruction_give_the_centred_codes_of_the_reference_in_both_halves():
    """The packed-tile conversions (triton_int4._ASM_CODES in bf16x2, _ASM_CODES_F16 in f16x2), replayed in
    torch with the constants read from the PTX: word register jj holds planes jj and jj + 4, exactly
    (c - 8) (bf16) or (c - 8) / 64 (f16), for every code, against the reference unpacking."""
    from storytransformer.engine.fastgen import triton_int4 as ti
    w = torch.randn(8, 512, generator=torch.Generator().manual_seed(3))
    w[0, :128] = torch.arange(128).float() % 16  # every code in every plane
    qweight, scales, mins = quantize_int4(w, 128)
    codes = ((dequantize_int4(qweight, scales, mins, 128) - mins.float().repeat_interleave(128, 0).t())
             / scales.float().repeat_interleave(128, 0).t()).round().t()  # [K, N] like the words' inputs
    words = qweight.to(torch.int64) & 0xFFFFFFFF  # [K / 8, N]
    K = codes.shape[0]
    want = codes.view(K // 128, 8, 16, -1)  # [block, plane j, word row i, N]
    assert set(want[:, :, :, 0].flatten().tolist()) == set(range(16))

    movs, lop3, shifts = _ptx_consts(ti._ASM_CODES.value)
    assert shifts == [4, 8, 12] and all(m == (0x000F000F, 0x43004300) for m in lop3)
    for jj in range(4):
        v = ((words >> (4 * jj)) & lop3[jj][0]) | lop3[jj][1]
        lo, hi = _halves(v.view(K // 128, 16, -1), torch.bfloat16)
        lo = _fma16(lo, movs["one"], movs["off"], torch.bfloat16)
        hi = _fma16(hi, movs["one"], movs["off"], torch.bfloat16)
        assert torch.equal(lo, want[:, jj] - 8) and torch.equal(hi, want[:, jj + 4] - 8), jj

    movs, lop3, shifts = _ptx_consts(ti._ASM_CODES_F16.value)
    assert shifts == [8] and [m[0] for m in lop3] == [0x000F000F, 0x00F000F0] * 2
    for jj in range(4):
        v = ((words >> (8 if jj >= 2 else 0)) & lop3[jj][0]) | lop3[jj][1]
        a, b = ("a", "b") if jj % 2 == 0 else ("c", "d")
        lo, hi = _halves(v.view(K // 128, 16, -1), torch.float16)
        lo, hi = _fma16(lo, movs[a], movs[b], torch.float16), _fma16(hi, movs[a], movs[b], torch.float16)
        assert torch.equal(lo, (want[:, jj] - 8) / 64) and torch.equal(hi, (want[:, jj + 4] - 8) / 64), jj


def test_the_packed_tiles_arithmetic_replayed_in_torch_matches_the_reference_product():
    """The packed one-row product as the kernel computes it (activation pairs x[16 jj + i], x[64 + 16 jj + i];
    four products a word rounded and summed in f16 (or bf16); halves added in float32, then scale and the
    centred minimum in float32), replayed in torch: within 1 % of the largest output of the reference
    (f16: as close as the float32 tiles), for activations of 1e-3 to 1e4."""
    w = (torch.randn(64, 512, generator=torch.Generator().manual_seed(4)) * 0.02).bfloat16()
    qweight, scales, mins = quantize_int4(w, 128)
    ref_w = dequantize_int4(qweight, scales, mins, 128)
    K, N = 512, 64
    codes = ((ref_w.t() - mins.float().repeat_interleave(128, 0)) / scales.float().repeat_interleave(128, 0)).round()
    c = codes.view(K // 128, 8, 16, N)
    s = scales.float().view(K // 128, 1, N)
    z = mins.float().view(K // 128, 1, N) + 8 * s
    errors = {}
    for scale in (1e-3, 1.0, 1e4):
        x = (torch.randn(K, generator=torch.Generator().manual_seed(5)) * scale).bfloat16()
        want = x.float() @ ref_w.t()
        xb = x.float().view(K // 128, 8, 16, 1)
        for dtype, div in ((torch.float16, 64.0), (torch.bfloat16, 1.0)):
            cc = ((c - 8) / div).to(dtype)
            xx = xb.clamp(-65504, 65504).to(dtype) if dtype == torch.float16 else xb.to(dtype)
            t = torch.zeros(K // 128, 2, 16, N, dtype=dtype)  # the two halves of the bf16x2 / f16x2 sum
            for jj in range(4):
                t[:, 0] = (cc[:, jj].double() * xx[:, jj].double() + t[:, 0].double()).to(dtype)
                t[:, 1] = (cc[:, jj + 4].double() * xx[:, jj + 4].double() + t[:, 1].double()).to(dtype)
            words = t.float().sum(1)  # [block, i, N]
            got = ((words * (s * div)).sum(1) + xb.sum((1, 2)) * z.squeeze(1)).sum(0)
            err = ((got - want).abs().max() / want.abs().max()).item()
            errors[(dtype, scale)] = err
            assert torch.isfinite(got).all() and err < 1e-2, (dtype, scale, err)
    # f16 is the accurate variant: well inside the bf16 output rounding (2^-9) at every scale
    assert max(errors[(torch.float16, sc)] for sc in (1e-3, 1.0, 1e4)) < 2e-3, errors


def test_the_packed_tiles_are_chosen_only_on_cuda_gpus_that_have_the_ptx(monkeypatch):
    """Inline PTX exists only on NVIDIA GPUs (fma on bf16x2 / f16x2 from compute capability 8.0): on the CPU,
    in Triton's interpreter, on ROCm (mocked) and on older GPUs (mocked) every one-row tile, tuned or
    default, becomes its portable twin (the planes fma tile); on an H200-class GPU (mocked) it stays."""
    from storytransformer.engine.fastgen import triton_int4 as ti

    def facts(hip, cuda, capability):
        monkeypatch.setattr(torch.version, "hip", hip, raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability)
        ti._packed_supported.cache_clear()

    shapes = [(1, 37888, 3584), (1, 4608, 3584), (1, 1000, 640)]  # two tuned packed tiles and a default
    try:
        facts(None, True, (9, 0))
        assert ti.packed_supported("cuda") and not ti.packed_supported("cpu")
        for m, n, k in shapes:
            cfg = ti.decode_config(m, n, k, "cuda")
            assert cfg.packed and not cfg.use_dot, cfg
        assert not ti.decode_config(4, 4608, 3584, "cuda").packed  # more rows: tensor-core tiles
        for hip, capability in (("6.2.41133", (9, 4)), (None, (7, 5))):
            facts(hip, True, capability)
            assert not ti.packed_supported("cuda")
            for m, n, k in shapes:
                cfg = ti.decode_config(m, n, k, "cuda")
                assert not cfg.packed and cfg.planes and not cfg.use_dot, (hip, cfg)
        facts(None, False, (9, 0))
        assert not ti.packed_supported("cuda")
        tuned = ti.TUNED[(1, 37888, 3584)]
        assert tuned.packed and ti.decode_config(1, 37888, 3584, "cpu") == ti._portable(tuned, 1)
        assert ti._portable(tuned, 1).block_n == tuned.block_n and ti._portable(tuned, 4).use_dot
    finally:
        ti._packed_supported.cache_clear()


@needs_triton
def test_a_packed_tile_asked_for_where_no_ptx_exists_runs_its_portable_twin():
    interpret("""
        import torch
        from storytransformer.engine.fastgen.int4 import quantize_int4, dequantize_int4
        from storytransformer.engine.fastgen import triton_int4 as ti
        g = torch.Generator().manual_seed(7)
        assert not ti.packed_supported("cpu")
        w = (torch.randn(40, 512, generator=g) * 0.02).bfloat16()
        qw, s, z = quantize_int4(w, 128)
        ref_w = dequantize_int4(qw, s, z, 128)
        for M, cfg in ((1, ti.DecodeConfig(False, 64, 2, fused_sum=True, packed=5)),
                       (1, ti.DecodeConfig(False, 64, 4, 2, packed=4)),
                       (3, ti.DecodeConfig(False, 64, 2, fused_sum=True, packed=5))):
            x = torch.randn(M, 512, generator=g).bfloat16()
            want = x.float() @ ref_w.T
            got = ti.int4_decode(x, qw, s, z, 128, config=cfg)
            assert ((got.float() - want).abs().max() / want.abs().max()) < 1e-2, (M, cfg)
        print("ok")
    """)


@needs_triton
def test_swiglu_made_while_loading_matches_silu_mul_then_the_product_in_every_tile():
    """w2's decode kernel taking w13's output [gate | up] (``swiglu=True``): the same product as the torch
    silu_mul followed by the plain product, for 1 to 8 rows, every tile kind, a padded input width (576, as
    SmolLM2), a strided row and the fused split sum's counters; and the unfused kernel's product of the same
    activations (the interpreter truncates float32 to bf16 where the GPU rounds to nearest, so they are made
    here as it makes them; the GPU checks of benchmarks/gpu/int4_bench.py hold them to silu_mul's)."""
    interpret("""
        import torch
        from storytransformer.engine.fastgen.int4 import quantize_int4, dequantize_int4
        from storytransformer.engine.fastgen import stages, triton_int4 as ti
        g = torch.Generator().manual_seed(11)
        DC = ti.DecodeConfig
        trunc = lambda v: (v.float().view(torch.int32) & ~0xFFFF).view(torch.float32)  # float32 -> bf16, truncated
        for N, K, bias in ((40, 512, False), (24, 576, True)):
            w = (torch.randn(N, K, generator=g) * 0.02).bfloat16()
            qw, s, z = quantize_int4(w, 128, pad=True)
            ref_w = dequantize_int4(qw, s, z, 128)[:, :K]
            b = (torch.randn(N, generator=g) * 0.1).bfloat16() if bias else None
            for M in (1, 2, 3, 8):
                wide = torch.randn(M, 2 * K + 64, generator=g).bfloat16() * 2
                gate_up = wide[:, :2 * K]  # rows strided by 2K + 64
                act = stages.silu_mul(gate_up)  # the torch reference
                want = act.float() @ ref_w.T + (b.float() if b is not None else 0)
                gate, up = gate_up.float().chunk(2, dim=-1)
                act_here = trunc(trunc(gate / (1 + torch.exp(-gate))) * up).bfloat16()  # exactly bf16 already
                cfgs = [None, DC(False, 16, 1), DC(False, 32, 3, masked=True, fused_sum=True), DC(True, 16, 3),
                        DC(True, 64, 1, planes=True, fused_sum=True)]
                if M == 1:
                    cfgs += [DC(False, 16, 3, planes=True, fused_sum=True), DC(False, 64, 0, planes=True, masked=True),
                             DC(False, 64, 2, fused_sum=True, packed=5)]  # (its portable twin here)
                for cfg in cfgs:
                    for _ in range(2):  # the counters are left at zero
                        got = ti.int4_decode(gate_up, qw, s, z, 128, b, config=cfg, swiglu=True)
                        assert got.shape == (M, N) and got.dtype == torch.bfloat16
                        err = (got.float() - want).abs().max() / want.abs().max()
                        assert err < 2e-2, (N, K, M, cfg, float(err))
                    plain = ti.int4_decode(act_here, qw, s, z, 128, b, config=cfg)
                    same = (got.float() - plain.float()).abs().max() / want.abs().max()
                    assert same < 1e-3, (N, K, M, cfg, float(same))
        try:
            ti.int4_decode(torch.zeros(1, 1025).bfloat16(), qw, s, z, 128, swiglu=True)
            raise AssertionError("an odd [gate | up] width was accepted")
        except ValueError:
            pass
        assert all(int(c.abs().sum()) == 0 for c in ti._COUNTERS.values())
        print("ok")
    """)


@needs_triton
def test_swiglu_made_in_the_split_sum_of_an_interleaved_gate_up_matches_the_product_then_silu_mul():
    """w13 stored with interleaved gate and up columns (``glu_chunk``): the last program of each column tile
    writes silu(gate) * up. Against the torch reference (the product, columns put back, silu_mul) for 1 and 3
    rows, two chunk sizes, a bias and a padded input width; and, exactly, against the same kernel's plain
    product followed by SwiGLU rounded as the interpreter rounds (it truncates float32 to bf16). A tile that
    cannot sum its own splits (one split) makes the product whole first. Counters are left at zero."""
    interpret("""
        import dataclasses
        import torch
        from storytransformer.engine.fastgen.int4 import quantize_int4, dequantize_int4
        from storytransformer.engine.fastgen.interleave import interleave_gate_up, deinterleave_gate_up
        from storytransformer.engine.fastgen import stages, triton_int4 as ti
        g = torch.Generator().manual_seed(12)
        DC = ti.DecodeConfig
        trunc = lambda v: (v.float().view(torch.int32) & ~0xFFFF).view(torch.float32)  # float32 -> bf16, truncated
        for I, K, bias in ((64, 512, False), (48, 576, True)):
            w = (torch.randn(2 * I, K, generator=g) * 0.02).bfloat16()
            b = (torch.randn(2 * I, generator=g) * 0.1).bfloat16() if bias else None
            for chunk in (8, 16):
                wi = interleave_gate_up(w, chunk)
                bi = interleave_gate_up(b, chunk) if b is not None else None
                assert torch.equal(deinterleave_gate_up(wi.t(), chunk).t(), w)
                qw, s, z = quantize_int4(wi, 128, pad=True)
                ref_w = dequantize_int4(qw, s, z, 128)[:, :K]
                for M in (1, 3):
                    x = torch.randn(M, K, generator=g).bfloat16()
                    full = (x.float() @ ref_w.T + (bi.float() if b is not None else 0)).bfloat16()
                    want = stages.silu_mul(deinterleave_gate_up(full, chunk)).float()
                    cfgs = [None, DC(True, 16, 1, fused_sum=True), DC(False, 16, 8)]
                    if M == 1:
                        cfgs.append(DC(False, 64, 1, planes=True, fused_sum=True))
                    for cfg in cfgs:
                        got = ti.int4_decode(x, qw, s, z, 128, bi, config=cfg, glu_chunk=chunk)
                        assert got.shape == (M, I) and got.dtype == torch.bfloat16
                        err = (got.float() - want).abs().max() / want.abs().max()
                        assert err < 3e-2, (I, K, chunk, M, cfg, float(err))
                        tile = dataclasses.replace(cfg or ti.decode_config(M, 2 * I, qw.shape[0] * 8, "cpu"),
                                                   block_n=2 * chunk, fused_sum=True)
                        blocks = qw.shape[0] * 8 // 128
                        if blocks > ti._blocks_per_split(tile, 2 * I, qw.shape[0] * 8):  # more than one split
                            plain = ti.int4_decode(x, qw, s, z, 128, bi, config=tile)
                            gate, up = deinterleave_gate_up(plain, chunk).float().chunk(2, -1)
                            here = trunc(trunc(gate / (1 + torch.exp(-gate))) * up)
                            assert torch.equal(got.float(), here), (I, K, chunk, M, cfg)
        assert all(int(c.abs().sum()) == 0 for c in ti._COUNTERS.values())
        for bad in (12, 64):  # not a power of two; twice 64 does not divide the 96 outputs
            try:
                ti.int4_decode(torch.zeros(1, 512).bfloat16(), *quantize_int4(w[:, :512], 128), 128, glu_chunk=bad)
                raise AssertionError(f"glu_chunk={bad} was accepted")
            except ValueError:
                pass
        print("ok")
    """)


@needs_triton
def test_rotary_and_the_cache_write_made_in_the_split_sum_of_an_interleaved_qkv_match_the_rotary_kernel():
    """wqkv stored with each head's two halves interleaved (``rope``): the last program of each column tile
    rotates its q or k half-pairs and writes q, and k and v into the cache at the position read on the device.
    Bit for bit against the same tile's plain product, its columns put back, then triton_fused.qkv_rotary_cache
    (with a bias, three chunk sizes, two positions); a tile with one split takes that path itself. Nothing else
    of the cache is written; counters are left at zero."""
    interpret("""
        import dataclasses
        import torch
        from storytransformer.engine.fastgen.int4 import quantize_int4
        from storytransformer.engine.fastgen.interleave import interleave_halves, deinterleave_halves
        from storytransformer.engine.fastgen import triton_fused as tf, triton_int4 as ti
        g = torch.Generator().manual_seed(21)
        DC = ti.DecodeConfig
        rotary, apart = tf.qkv_rotary_cache, []
        tf.qkv_rotary_cache = lambda *a, **k: (apart.append(1), rotary(*a, **k))[1]
        Hq, Hkv, D, K, S = 4, 2, 64, 256, 16
        N = (Hq + 2 * Hkv) * D
        angles = torch.randn(S, D // 2, generator=g).repeat(1, 2)
        for chunk, cfg, one_split in ((16, DC(False, 32, 1, planes=True, fused_sum=True), False),
                                      (8, DC(False, 16, 1), False), (32, DC(True, 64, 1), False),
                                      (16, DC(False, 32, 8), True)):
            w = (torch.randn(N, K, generator=g) * 0.05).bfloat16()
            b = (torch.randn(N, generator=g) * 0.1).bfloat16()
            qw, s, z = quantize_int4(interleave_halves(w, chunk, D), 128)
            bi = interleave_halves(b, chunk, D)
            for p in (3, 11):
                pos = torch.tensor([p])
                cos, sin = angles.cos()[p:p + 1].bfloat16(), angles.sin()[p:p + 1].bfloat16()
                x = torch.randn(1, K, generator=g).bfloat16()
                tile = dataclasses.replace(cfg, block_n=2 * chunk, fused_sum=True)
                y = deinterleave_halves(ti.int4_decode(x, qw, s, z, 128, bi, config=tile), chunk, D)
                kc, vc = (torch.randn(1, Hkv, S, D, generator=g).bfloat16() for _ in range(2))
                k2, v2 = kc.clone(), vc.clone()
                q_want, q_got = torch.empty(1, 1, Hq, D).bfloat16(), torch.empty(1, 1, Hq, D).bfloat16()
                rotary(y.view(1, 1, N), cos, sin, pos, kc, vc, Hq, Hkv, out=q_want)
                before = len(apart)
                got = ti.int4_decode(x, qw, s, z, 128, bi, config=cfg,
                                     rope=ti.RopeTarget(cos, sin, pos, q_got, k2, v2, Hq, Hkv, chunk))
                assert got is q_got and len(apart) == before + one_split, (chunk, cfg)
                assert torch.equal(q_got, q_want) and torch.equal(k2, kc) and torch.equal(v2, vc), (chunk, cfg, p)
                assert not torch.equal(k2[:, :, p], k2[:, :, p - 1])  # the position was written
        assert all(int(c.abs().sum()) == 0 for c in ti._COUNTERS.values())
        print("ok")
    """)


def test_a_model_with_the_swiglu_and_rotary_epilogues_gives_the_logits_of_the_plain_int4_model():
    """quantize_linears_int4(swiglu_epilogue=True) stores each w13 with interleaved columns (group-wise
    quantisation is per output column, so the same codes) and the model puts them back before silu_mul
    where the decode kernel does not run: the same logits as the plain int4 model. The same for each wqkv
    whose head halves are interleaved (regroup_heads), put back before the rotary stage."""
    plain = build_model(CFG, "cpu", torch.bfloat16, seed=2)
    quantize_linears_int4(plain)
    inter = build_model(CFG, "cpu", torch.bfloat16, seed=2)
    assert quantize_linears_int4(inter, swiglu_epilogue=True, rotary_epilogue=True) == 4 * CFG.n_layers
    w13 = inter.layers[0].feed_forward.w13
    assert w13.glu_chunk == 32 and "glu_chunk=32" in repr(w13)
    wqkv = inter.layers[0].attention.wqkv  # each head's halves interleaved, in chunks of 16 (half of head_dim 32)
    assert (wqkv.rope_chunk, wqkv.head_dim) == (16, CFG.head_dim)
    assert not plain.layers[0].feed_forward.w13.glu_chunk
    assert not any(layer.attention.wqkv.glu_chunk or layer.feed_forward.w2.glu_chunk for layer in inter.layers)
    again = build_model(CFG, "cpu", torch.bfloat16, seed=2)  # the plain model's w13 regrouped in place
    quantize_linears_int4(again)
    for layer, other in zip(again.layers, inter.layers):
        layer.feed_forward.w13.regroup_gate_up(16)
        layer.feed_forward.w13.regroup_gate_up(32)
        assert all(torch.equal(getattr(layer.feed_forward.w13, n), getattr(other.feed_forward.w13, n))
                   for n in ("qweight", "scales", "mins"))
    for layer in inter.layers:  # whatever the tile said, the halves of each 32-dim head in chunks of 8
        layer.attention.wqkv.regroup_heads(8, CFG.head_dim)
    assert inter.layers[0].attention.wqkv.rope_chunk == 8
    prompt = torch.randint(CFG.vocab, (1, 24), generator=torch.Generator().manual_seed(6))
    want, got = plain.reference_logits(prompt), inter.reference_logits(prompt)
    assert ((got - want).abs().max() / want.abs().max()) < 1e-3
    tokens = [Generator(m, StaticKVCache(CFG, 64, device="cpu", dtype=torch.bfloat16), "eager", "matmul",
                        chunk=16).generate(prompt, 6) for m in (plain, inter)]
    assert torch.equal(tokens[0], tokens[1])


def test_the_int4_head_and_the_fused_swiglu_are_options_and_the_model_stays_close_to_bf16():
    """quantize_linears_int4(head=True) makes the output head an Int4Linear too (and the model still builds
    its reference cache and decodes); fuse_swiglu marks each w2, whose swiglu() on the CPU is silu_mul then the
    product; by default neither changes."""
    from storytransformer.engine.fastgen import stages
    base = build_model(CFG, "cpu", torch.bfloat16, seed=1)
    plain = build_model(CFG, "cpu", torch.bfloat16, seed=1)
    assert quantize_linears_int4(plain) == 4 * CFG.n_layers
    assert type(plain.output) is torch.nn.Linear and not plain.layers[0].feed_forward.w2.fuse_swiglu
    quant = build_model(CFG, "cpu", torch.bfloat16, seed=1)
    assert quantize_linears_int4(quant, head=True, fuse_swiglu=True) == 4 * CFG.n_layers + 1
    assert isinstance(quant.output, Int4Linear) and quant.output.out_features == CFG.vocab
    assert all(layer.feed_forward.w2.fuse_swiglu for layer in quant.layers)
    assert not any(getattr(layer.feed_forward.w13, "fuse_swiglu") for layer in quant.layers)
    assert weights_bytes(quant.output) < 0.3 * weights_bytes(base.output)
    w2 = quant.layers[0].feed_forward.w2
    gate_up = torch.randn(3, 2 * CFG.intermediate, generator=torch.Generator().manual_seed(4)).bfloat16()
    assert torch.equal(w2.swiglu(gate_up, stages.silu_mul), w2(stages.silu_mul(gate_up)))
    prompt = torch.randint(CFG.vocab, (1, 40), generator=torch.Generator().manual_seed(3))
    ref = base.reference_logits(prompt)
    for model, bound in ((plain, 0.2), (quant, 0.25)):  # quantisation noise, not a different model
        got = model.reference_logits(prompt)
        assert got.shape == ref.shape
        err = (got - ref).norm() / ref.norm()
        assert err < bound, err
    tokens = Generator(quant, StaticKVCache(CFG, 64, device="cpu", dtype=torch.bfloat16), "eager", "matmul",
                       chunk=16).generate(prompt, 4)
    assert tokens.shape == (1, 4) and int(tokens.max()) < CFG.vocab

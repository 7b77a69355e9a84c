"""Split-K flash-decoding in Triton: one query token over a long static KV cache.

Decoding is bandwidth-bound: each step must read the filled part of the cache once. The matmul
kernel in attention.py reads the whole capacity and lets a mask discard the tail; this one reads
only positions below the valid length, which it loads from a device tensor, so the launch grid
stays fixed and the step can be replayed from a CUDA graph. The cache capacity is cut into
``splits`` slices (by default the valid length is spread over all of them, each slice at most the
capacity's share: at 4k in a 32k cache the 4k positions keep every program busy instead of an eighth of
them); each program streams its slice for the G query heads of one key/value head
with an online softmax, and one more Triton kernel (``_merge_kernel``) merges the slices by their
log-sum-exp. The merge was nine torch kernels (max, subtract, exp, two products, two sums, divide,
cast) per layer and step: about 20 us of a graph-replayed decoding step per layer at 4k context, more
than the attention itself (docs/benchmarks/gpu_int4.md, 2026-12-04). ``MERGE = "torch"`` keeps the
torch merge (the reference, and the benchmark's before figure).
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

from . import pdl

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"  # Triton's CPU interpreter (tests)
MERGE = "triton"  # how flash_decode merges its slices: "triton" (one kernel) or "torch" (the reference ops)
SPREAD = True  # slices of the valid length (False: of the capacity, the slices past the length idle)
# The launch plan (benchmarks/gpu/decode_attention_sweep.py measures the choices): programs aimed at,
# the fewest positions a slice takes from the valid length (a multiple of 16: a short context then
# fills fewer slices, and the merge skips the empty ones), positions a block, warps and stages a program.
TARGET_PROGRAMS: int | None = None  # None: PROGRAMS_PER_SM on each multiprocessor (512 off a GPU)
PROGRAMS_PER_SM = 2  # H200, 7.6B shape, 4k and 32k: 2 a multiprocessor beat 1, 2.5, 3 and the earlier 512 (~3.9)
MIN_SLICE = 16
BLOCK_N = 64
WARPS: int | None = None  # None: Triton's default
STAGES: int | None = None
# The 8-bit cache's products: "f16" converts the e4m3 keys and values and a bf16 query to float16 (e4m3 -> f16
# is one instruction for two values on sm_89+; float16 keeps more mantissa than bf16), "q" to the query's dtype
# (bf16: slower than the bf16 cache). A float32 query keeps float32 products either way.
FP8_DOT = "f16"
# An 8-bit cache of at least FP8_LONG_CAPACITY positions reads FP8_LONG_BLOCK_N positions a block (None: BLOCK_N).
# Measured on an H200 (docs/benchmarks/gpu_int4.md): 128 positions take 25 % less time at 512k and 10 % less at
# 32k, and 11 % more at 4k. The plan follows the capacity, not the length, so a CUDA graph stays valid.
FP8_LONG_BLOCK_N: int | None = 128
FP8_LONG_CAPACITY = 32768


@triton.jit
def _attend_block(q, k_base, v_base, ks_base, vs_base, stride_ks, stride_vs, start, hi, sm_scale, m_i, l_i, acc,
                  D: tl.constexpr, BLOCK_N: tl.constexpr, FP8: tl.constexpr):
    """One block of BLOCK_N positions from ``start`` (those >= hi masked) into the online softmax. With
    FP8 the keys and values are e4m3 with one scale per position: q.k is scaled after the product, the
    probabilities are scaled before the product with v."""
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    pos = start + offs_n
    ok = pos < hi
    k = tl.load(k_base + pos[:, None] * stride_ks + offs_d[None, :], mask=ok[:, None], other=0.0)  # [N, D]
    s = tl.dot(q, tl.trans(k.to(q.dtype))) * sm_scale  # [G_PAD, N] in float32
    if FP8:
        s = s * tl.load(ks_base + pos, mask=ok, other=0.0)[None, :]
    s = tl.where(ok[None, :], s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a block with nothing valid yet: no NaN
    alpha = tl.exp(m_i - m_safe)
    p = tl.exp(s - m_safe[:, None])
    p = tl.where(ok[None, :], p, 0.0)
    l_i = l_i * alpha + tl.sum(p, 1)
    v = tl.load(v_base + pos[:, None] * stride_vs + offs_d[None, :], mask=ok[:, None], other=0.0)  # [N, D]
    if FP8:
        p = p * tl.load(vs_base + pos, mask=ok, other=0.0)[None, :]
    acc = acc * alpha[:, None] + tl.dot(p.to(q.dtype), v.to(q.dtype))
    return m_new, l_i, acc


@triton.jit
def _split_kernel(Q, K, V, KS, VS, LEN, O, M, L,
                  stride_qb, stride_qh,
                  stride_kb, stride_kh, stride_ks,
                  stride_vb, stride_vh, stride_vs,
                  stride_sb, stride_sh,
                  stride_ob, stride_oh, stride_os,
                  stride_mb, stride_mh,
                  sm_scale, split_len, n_splits, n_kv_heads, SPREAD: tl.constexpr, MIN_SLICE: tl.constexpr,
                  DYNAMIC_LOOP: tl.constexpr, N_BLOCKS: tl.constexpr, G: tl.constexpr, G_PAD: tl.constexpr,
                  D: tl.constexpr, BLOCK_N: tl.constexpr, FP8: tl.constexpr, PDL: tl.constexpr = False,
                  F16: tl.constexpr = False):
    pdl.gate(PDL)
    bh = tl.program_id(0)
    split = tl.program_id(1)
    b = bh // n_kv_heads
    kvh = bh % n_kv_heads
    length = tl.load(LEN).to(tl.int32)
    if SPREAD:  # the valid length over all slices (multiples of 16 positions), however short it is
        split_len = tl.minimum(split_len, tl.maximum(tl.cdiv(tl.cdiv(length, n_splits), 16) * 16, MIN_SLICE))
    lo = split * split_len
    hi = tl.minimum(lo + split_len, length)

    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, D)
    heads = kvh * G + offs_g
    g_ok = offs_g < G
    q = tl.load(Q + b * stride_qb + heads[:, None] * stride_qh + offs_d[None, :], mask=g_ok[:, None], other=0.0)
    if F16:  # the products in float16: the e4m3 keys and values convert to it directly
        q = q.to(tl.float16)

    m_i = tl.full([G_PAD], float("-inf"), tl.float32)
    l_i = tl.zeros([G_PAD], tl.float32)
    acc = tl.zeros([G_PAD, D], tl.float32)
    k_base = K + b * stride_kb + kvh * stride_kh
    v_base = V + b * stride_vb + kvh * stride_vh
    ks_base = KS + b * stride_sb + kvh * stride_sh
    vs_base = VS + b * stride_sb + kvh * stride_sh
    if DYNAMIC_LOOP:  # compiled: stop at the valid length
        for start in range(lo, hi, BLOCK_N):
            m_i, l_i, acc = _attend_block(q, k_base, v_base, ks_base, vs_base, stride_ks, stride_vs, start, hi,
                                          sm_scale, m_i, l_i, acc, D, BLOCK_N, FP8)
    else:  # Triton's CPU interpreter cannot loop to a bound computed in the kernel: mask whole blocks
        for i in range(0, N_BLOCKS):
            m_i, l_i, acc = _attend_block(q, k_base, v_base, ks_base, vs_base, stride_ks, stride_vs,
                                          lo + i * BLOCK_N, hi, sm_scale, m_i, l_i, acc, D, BLOCK_N, FP8)

    o_ptrs = O + b * stride_ob + heads[:, None] * stride_oh + split * stride_os + offs_d[None, :]
    tl.store(o_ptrs, acc, mask=g_ok[:, None])
    ml = b * stride_mb + heads * stride_mh + split
    tl.store(M + ml, m_i, mask=g_ok)
    tl.store(L + ml, l_i, mask=g_ok)


@triton.jit
def _merge_kernel(O, M, L, OUT, stride_ob, stride_oh, stride_os, stride_mb, stride_mh, stride_outb, stride_outh,
                  n_heads, SPLITS: tl.constexpr, S_PAD: tl.constexpr, BLOCK_D: tl.constexpr, PDL: tl.constexpr = False):
    """Program (batch x query head, block of head dims): OUT = sum_s w_s O_s / sum_s w_s L_s with
    w_s = exp(M_s - max M) (float32, as the torch reference); empty slices (M = -inf) weigh nothing."""
    pdl.gate(PDL)
    bh = tl.program_id(0)
    b = bh // n_heads
    h = bh % n_heads
    offs_s = tl.arange(0, S_PAD)
    s_ok = offs_s < SPLITS
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    ml = b * stride_mb + h * stride_mh + offs_s
    m = tl.load(M + ml, mask=s_ok, other=float("-inf"))
    lse = tl.load(L + ml, mask=s_ok, other=0.0)
    w = tl.exp(m - tl.max(m, 0))
    w = tl.where(s_ok, w, 0.0)
    full = s_ok & (m > float("-inf"))  # an empty slice (past a short context) is not read
    o = tl.load(O + b * stride_ob + h * stride_oh + offs_s[:, None] * stride_os + offs_d[None, :],
                mask=full[:, None], other=0.0)
    out = tl.sum(o * w[:, None], 0) / tl.sum(lse * w, 0)
    tl.store(OUT + b * stride_outb + h * stride_outh + offs_d, out.to(OUT.dtype.element_ty))


def merge_splits(o: torch.Tensor, m: torch.Tensor, lse: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """o [B, Hq, splits, D], m and lse [B, Hq, splits] (float32) -> [B, Hq, D] in ``dtype``: one launch."""
    B, Hq, splits, D = o.shape
    if o.stride(-1) != 1 or m.stride(-1) != 1 or lse.stride() != m.stride():
        raise ValueError("merge_splits needs the slices' values contiguous along D and m, lse laid out alike")
    s_pad = triton.next_power_of_2(splits)
    block_d = max(1, min(D, 4096 // s_pad))  # at most 4096 float32 values a program
    out = torch.empty(B, Hq, D, device=o.device, dtype=dtype)
    on = pdl.enabled(o.device)
    _merge_kernel[(B * Hq, triton.cdiv(D, block_d))](
        o, m, lse, out, o.stride(0), o.stride(1), o.stride(2), m.stride(0), m.stride(1), out.stride(0),
        out.stride(1), Hq, SPLITS=splits, S_PAD=s_pad, BLOCK_D=block_d, PDL=on, **pdl.launch(on))
    return out


def merge_splits_torch(o: torch.Tensor, m: torch.Tensor, lse: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The reference merge in torch ops: weights exp(m_s - max m); empty slices have m = -inf."""
    w = torch.exp(m - m.amax(dim=-1, keepdim=True))  # [B, Hq, splits]
    out = (o * w[..., None]).sum(dim=2) / (lse * w).sum(dim=-1)[..., None]  # [B, Hq, D]
    return out.to(dtype)


_SMS: dict[int, int] = {}


def programs_for(device: torch.device) -> int:
    """The programs the slices aim at on ``device``: :data:`PROGRAMS_PER_SM` on each multiprocessor."""
    if device.type != "cuda":
        return 512
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _SMS:
        _SMS[index] = torch.cuda.get_device_properties(index).multi_processor_count
    return PROGRAMS_PER_SM * _SMS[index]


def plan_splits(capacity: int, programs_per_split: int, block_n: int = 64,
                target_programs: int | None = None) -> tuple[int, int]:
    """(splits, split_len): enough programs to fill the GPU, each slice a multiple of ``block_n``."""
    blocks = triton.cdiv(capacity, block_n)
    target_programs = target_programs or TARGET_PROGRAMS or 512
    splits = max(1, min(blocks, target_programs // max(1, programs_per_split)))
    split_len = triton.cdiv(blocks, splits) * block_n
    return triton.cdiv(capacity, split_len), split_len


def block_for(capacity: int, fp8: bool) -> int:
    """Positions a block for a cache of ``capacity`` positions: FP8_LONG_BLOCK_N for a long 8-bit cache."""
    if fp8 and FP8_LONG_BLOCK_N is not None and capacity >= FP8_LONG_CAPACITY:
        return FP8_LONG_BLOCK_N
    return BLOCK_N


def flash_decode(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, length: torch.Tensor,
                 block_n: int | None = None, k_scale: torch.Tensor | None = None,
                 v_scale: torch.Tensor | None = None) -> torch.Tensor:
    """q [B, Hq, 1, D], keys and values [B, Hkv, S, D] (last dim contiguous; e4m3 with scales
    [B, Hkv, S], position stride 1, for an 8-bit cache), ``length`` [1] int tensor -> [B, Hq, 1, D].
    Reads only positions < length."""
    B, Hq, _, D = q.shape
    Hkv, S = keys.shape[1], keys.shape[2]
    G = Hq // Hkv
    if D < 16 or D & (D - 1):
        raise ValueError(f"triton decode needs a power-of-two head_dim >= 16, not {D}")
    fp8 = k_scale is not None
    if fp8 and (k_scale.stride(-1) != 1 or v_scale.stride() != k_scale.stride()):
        raise ValueError("triton decode needs the key and value scales laid out alike, positions contiguous")
    block_n = block_for(S, fp8) if block_n is None else block_n
    splits, split_len = plan_splits(S, B * Hkv, block_n, TARGET_PROGRAMS or programs_for(q.device))
    if MIN_SLICE % 16:
        raise ValueError(f"triton decode: MIN_SLICE must be a multiple of 16, not {MIN_SLICE}")
    tuning = {k: v for k, v in (("num_warps", WARPS), ("num_stages", STAGES)) if v is not None}
    q2 = q.reshape(B, Hq, D).contiguous()
    o = torch.empty(B, Hq, splits, D, device=q.device, dtype=torch.float32)
    m = torch.empty(B, Hq, splits, device=q.device, dtype=torch.float32)
    lse = torch.empty_like(m)
    ks, vs = (k_scale, v_scale) if fp8 else (m, m)  # unused without FP8
    on = pdl.enabled(q.device)
    _split_kernel[(B * Hkv, splits)](
        q2, keys, values, ks, vs, length, o, m, lse,
        q2.stride(0), q2.stride(1),
        keys.stride(0), keys.stride(1), keys.stride(2),
        values.stride(0), values.stride(1), values.stride(2),
        ks.stride(0) if fp8 else 0, ks.stride(1) if fp8 else 0,
        o.stride(0), o.stride(1), o.stride(2),
        m.stride(0), m.stride(1),
        1.0 / math.sqrt(D), split_len, splits, Hkv, SPREAD=SPREAD, MIN_SLICE=MIN_SLICE,
        DYNAMIC_LOOP=not INTERPRETED, N_BLOCKS=split_len // block_n if INTERPRETED else 0, G=G,
        G_PAD=max(16, triton.next_power_of_2(G)), D=D, BLOCK_N=block_n, FP8=fp8, PDL=on,
        F16=fp8 and FP8_DOT == "f16" and q.dtype == torch.bfloat16, **tuning,
        **pdl.launch(on))
    merge = merge_splits_torch if MERGE == "torch" else merge_splits
    return merge(o, m, lse, q.dtype).reshape(B, Hq, 1, D)

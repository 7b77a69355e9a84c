"""Causal flash attention for prefill in Triton, with grouped-query heads read in place.

A chunk of ``n`` new queries attends to ``L = start + n`` cached positions, causal aligned to the
end (query i sits at position L - n + i). Each program owns BLOCK_M queries of one query head and
streams the keys of its key/value head (h // G) once, with an online softmax in base 2. Keys wholly
before the block's first query need no mask; only the blocks on the diagonal are masked, which
halves the work of the mask. Programs of neighbouring query heads run side by side, so the G heads
that share a key/value head read it from L2 rather than from memory, and the heaviest (latest)
query blocks start first so the tail of the grid is short.

Written for the tensor layouts of the model: q a transposed projection [B, Hq, n, D] (any strides,
last dim contiguous), keys and values slices of the static cache [B, Hkv, L, D]; the output comes
back as [B, Hq, n, D] over a [B, n, Hq, D] buffer, so the output projection reads it without a copy.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"  # Triton's CPU interpreter (tests)
LOG2_E = 1.4426950408889634

# (BLOCK_M, BLOCK_N, num_warps, num_stages). On an H200 at 32k-128k tokens this ran at 510-545 TFLOP/s;
# (128, 64, 8, 3) and (64, 64, 4, 3) were 3-8 % slower, 4 warps or 2 stages 15-60 % slower, 4 stages
# does not fit in shared memory.
CONFIG = (128, 128, 8, 3)


@triton.jit
def _block(acc, l_i, m_i, q, k_base, v_base, ks_base, vs_base, stride_kn, stride_vn, start_n, q_pos, kv_len,
           qk_scale, MASKED: tl.constexpr, D: tl.constexpr, BLOCK_N: tl.constexpr, FP8: tl.constexpr):
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    if MASKED:
        k = tl.load(k_base + offs_n[None, :] * stride_kn + offs_d[:, None], mask=offs_n[None, :] < kv_len, other=0.0)
    else:
        k = tl.load(k_base + offs_n[None, :] * stride_kn + offs_d[:, None])
    qk = tl.dot(q, k.to(q.dtype))  # [M, N] float32
    if FP8:  # e4m3 keys and values, one scale per position: scale q.k after, p before its product with v
        if MASKED:
            ks = tl.load(ks_base + offs_n, mask=offs_n < kv_len, other=0.0)
            vs = tl.load(vs_base + offs_n, mask=offs_n < kv_len, other=0.0)
        else:
            ks = tl.load(ks_base + offs_n)
            vs = tl.load(vs_base + offs_n)
        qk = qk * ks[None, :]
    if MASKED:
        visible = (offs_n[None, :] <= q_pos[:, None]) & (offs_n[None, :] < kv_len)
        qk = qk * qk_scale + tl.where(visible, 0.0, -1.0e6)
        m_ij = tl.maximum(m_i, tl.max(qk, 1))
        qk = qk - m_ij[:, None]
    else:
        m_ij = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
        qk = qk * qk_scale - m_ij[:, None]
    p = tl.math.exp2(qk)
    alpha = tl.math.exp2(m_i - m_ij)
    l_i = l_i * alpha + tl.sum(p, 1)
    if MASKED:
        v = tl.load(v_base + offs_n[:, None] * stride_vn + offs_d[None, :], mask=offs_n[:, None] < kv_len, other=0.0)
    else:
        v = tl.load(v_base + offs_n[:, None] * stride_vn + offs_d[None, :])
    acc = acc * alpha[:, None]
    if FP8:
        p = p * vs[None, :]
    acc = tl.dot(p.to(q.dtype), v.to(q.dtype), acc)
    return acc, l_i, m_ij


@triton.jit
def _prefill_kernel(Q, K, V, KS, VS, O,
                    stride_qb, stride_qh, stride_qm,
                    stride_kb, stride_kh, stride_kn,
                    stride_vb, stride_vh, stride_vn,
                    stride_sb, stride_sh,
                    stride_ob, stride_oh, stride_om,
                    n_q, kv_len, n_heads, qk_scale,
                    G: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    STATIC_BLOCKS: tl.constexpr, FP8: tl.constexpr):
    bh = tl.program_id(0)
    pid_m = tl.num_programs(1) - 1 - tl.program_id(1)  # heaviest query blocks first
    b = bh // n_heads
    h = bh % n_heads
    kvh = h // G
    offset = kv_len - n_q  # position of query 0

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, D)
    rows = offs_m.to(tl.int64)  # n x Hq x D passes 2^31 elements at about 600k tokens
    q = tl.load(Q + b * stride_qb + h * stride_qh + rows[:, None] * stride_qm + offs_d[None, :],
                mask=offs_m[:, None] < n_q, other=0.0)
    q_pos = offset + offs_m
    k_base = K + b * stride_kb + kvh * stride_kh
    v_base = V + b * stride_vb + kvh * stride_vh
    ks_base = KS + b * stride_sb + kvh * stride_sh
    vs_base = VS + b * stride_sb + kvh * stride_sh

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, D], tl.float32)
    if STATIC_BLOCKS:  # Triton's CPU interpreter cannot loop to a bound computed in the kernel: mask all
        for i in range(0, STATIC_BLOCKS):
            acc, l_i, m_i = _block(acc, l_i, m_i, q, k_base, v_base, ks_base, vs_base, stride_kn, stride_vn, i * BLOCK_N, q_pos,
                                   kv_len, qk_scale, True, D, BLOCK_N, FP8)
    else:
        # Keys before the block's first query are visible to every row: no mask.
        full_end = ((offset + pid_m * BLOCK_M) // BLOCK_N) * BLOCK_N
        for start_n in range(0, full_end, BLOCK_N):
            acc, l_i, m_i = _block(acc, l_i, m_i, q, k_base, v_base, ks_base, vs_base, stride_kn, stride_vn, start_n, q_pos, kv_len,
                                   qk_scale, False, D, BLOCK_N, FP8)
        # The diagonal: keys up to the block's last query, masked.
        diag_end = tl.minimum(offset + (pid_m + 1) * BLOCK_M, kv_len)
        for start_n in range(full_end, diag_end, BLOCK_N):
            acc, l_i, m_i = _block(acc, l_i, m_i, q, k_base, v_base, ks_base, vs_base, stride_kn, stride_vn, start_n, q_pos, kv_len,
                                   qk_scale, True, D, BLOCK_N, FP8)

    acc = acc / l_i[:, None]
    tl.store(O + b * stride_ob + h * stride_oh + rows[:, None] * stride_om + offs_d[None, :],
             acc.to(O.dtype.element_ty), mask=offs_m[:, None] < n_q)


def check_shapes(q: torch.Tensor, k: torch.Tensor) -> None:
    D = q.shape[-1]
    if D < 16 or D & (D - 1):
        raise ValueError(f"triton attention needs a power-of-two head_dim >= 16, not {D}")
    if q.shape[1] % k.shape[1]:
        raise ValueError(f"{q.shape[1]} query heads are not a multiple of {k.shape[1]} key/value heads")
    if q.shape[2] > k.shape[2]:
        raise ValueError(f"{q.shape[2]} queries but only {k.shape[2]} key positions")
    if q.stride(-1) != 1 or k.stride(-1) != 1:
        raise ValueError("triton attention needs the head dimension contiguous")


def flash_prefill(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_scale: torch.Tensor | None = None,
                  v_scale: torch.Tensor | None = None) -> torch.Tensor:
    """q [B, Hq, n, D], k and v [B, Hkv, L, D] with L >= n -> [B, Hq, n, D], causal aligned bottom-right.
    For an 8-bit cache k and v are e4m3 and k_scale, v_scale [B, Hkv, L] (positions contiguous) their
    scales, read in the kernel: the cached prefix is never dequantised into a copy."""
    check_shapes(q, k)
    B, Hq, n, D = q.shape
    kv_len = k.shape[2]
    fp8 = k_scale is not None
    if fp8 and (k_scale.stride(-1) != 1 or v_scale.stride() != k_scale.stride()):
        raise ValueError("triton attention needs the key and value scales laid out alike, positions contiguous")
    block_m, block_n, warps, stages = CONFIG
    if INTERPRETED:
        block_m, block_n = 16, 16
    out = torch.empty(B, n, Hq, D, device=q.device, dtype=q.dtype).transpose(1, 2)  # [B, Hq, n, D] view
    grid = (B * Hq, triton.cdiv(n, block_m))
    extra = {} if INTERPRETED else {"num_warps": warps, "num_stages": stages}
    ks, vs = (k_scale, v_scale) if fp8 else (k, v)  # unused without FP8
    _prefill_kernel[grid](
        q, k, v, ks, vs, out,
        q.stride(0), q.stride(1), q.stride(2),
        k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2),
        ks.stride(0) if fp8 else 0, ks.stride(1) if fp8 else 0,
        out.stride(0), out.stride(1), out.stride(2),
        n, kv_len, Hq, LOG2_E / math.sqrt(D),
        G=Hq // k.shape[1], D=D, BLOCK_M=block_m, BLOCK_N=block_n,
        STATIC_BLOCKS=triton.cdiv(kv_len, block_n) if INTERPRETED else 0, FP8=fp8, **extra)
    return out

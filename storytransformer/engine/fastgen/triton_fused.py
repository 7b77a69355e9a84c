"""Fused elementwise stages of the decoder in Triton: each reads its input once and writes once.

Unfused, an RMSNorm is about six passes over the activations (cast, square, mean, scale, cast,
weight), rotary five, SwiGLU three, and each is a separate kernel launch. At a prefill chunk of
8192 tokens those passes cost about a third of the time of the matrix products around them; in a
decoding step they are most of the ~40 launches per layer. Here:

  rms_norm          y = norm(x) * w                       one pass
  add_rms_norm      x += r; y = norm(x) * w               the residual add folded into the next norm
  qkv_rotary_cache  split the fused qkv projection, rotate q and k, write k and v into the static
                    cache at the position read from a device tensor (graph-safe), q to [B, n, Hq, D]
  silu_mul          silu(gate) * up from the fused gate/up projection

Numerics follow the torch reference in model.py: statistics in float32, the normalised value cast
to the model dtype before the weight multiplies it.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from . import pdl
from .kv_cache import KVLayer

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"  # Triton's CPU interpreter (tests)
NORM_WARPS = 4  # warps of a norm's one program per row (the benchmark's +normN variants try others)


@triton.jit
def _rms_norm_kernel(X, R, W, Y, stride_x, stride_r, stride_y, n_cols, eps,
                     ADD: tl.constexpr, BLOCK: tl.constexpr, PDL: tl.constexpr = False):
    pdl.gate(PDL)
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    ok = cols < n_cols
    x = tl.load(X + row * stride_x + cols, mask=ok, other=0.0)
    if ADD:
        x = x + tl.load(R + row * stride_r + cols, mask=ok, other=0.0)
        tl.store(X + row * stride_x + cols, x, mask=ok)
    x32 = x.to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x32 * x32, 0) / n_cols + eps)
    w = tl.load(W + cols, mask=ok, other=0.0)
    y = (x32 * rstd).to(x.dtype) * w
    tl.store(Y + row * stride_y + cols, y, mask=ok)


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1])


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    x2 = _rows(x)
    y = torch.empty_like(x2)
    on = pdl.enabled(x2.device)
    _rms_norm_kernel[(x2.shape[0],)](x2, x2, weight, y, x2.stride(0), x2.stride(0), y.stride(0), x2.shape[1], eps,
                                     ADD=False, BLOCK=triton.next_power_of_2(x2.shape[1]), PDL=on, num_warps=NORM_WARPS,
                                     **pdl.launch(on))
    return y.view(x.shape)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x += residual in place (x must be contiguous); returns norm(x) * weight."""
    x2, r2 = _rows(x), _rows(residual)
    if x2.data_ptr() != x.data_ptr() or not x.is_contiguous():
        raise ValueError("add_rms_norm updates x in place: it must be contiguous")
    y = torch.empty_like(x2)
    on = pdl.enabled(x2.device)
    _rms_norm_kernel[(x2.shape[0],)](x2, r2, weight, y, x2.stride(0), r2.stride(0), y.stride(0), x2.shape[1], eps,
                                     ADD=True, BLOCK=triton.next_power_of_2(x2.shape[1]), PDL=on, num_warps=NORM_WARPS,
                                     **pdl.launch(on))
    return y.view(x.shape)


@triton.jit
def _qkv_rotary_kernel(QKV, COS, SIN, POS, Q, KC, VC, KS, VS,
                       stride_t, stride_qt, stride_qh, stride_cs, stride_ch, stride_sh,
                       n_tokens, tokens_per_batch, n_heads, n_kv_heads,
                       D: tl.constexpr, BLOCK_T: tl.constexpr, FP8: tl.constexpr, ROUND_E4M3: tl.constexpr,
                       PDL: tl.constexpr = False):
    """Program (token block, head). Heads 0..Hq-1 are queries, then Hkv keys, then Hkv values. With FP8,
    keys and values are stored in e4m3 over one float32 scale per (position, head): amax / 448."""
    pdl.gate(PDL)
    HALF: tl.constexpr = D // 2
    pid_t = tl.program_id(0)
    head = tl.program_id(1)
    tok = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)  # row of the flattened [B * n] tokens
    ok = tok < n_tokens
    b = tok // tokens_per_batch
    i = tok % tokens_per_batch  # index within the chunk; cos/sin rows are the chunk's positions
    d = tl.arange(0, HALF)
    src = QKV + tok[:, None] * stride_t + head * D + d[None, :]
    x1 = tl.load(src, mask=ok[:, None], other=0.0).to(tl.float32)
    x2 = tl.load(src + HALF, mask=ok[:, None], other=0.0).to(tl.float32)
    pos = tl.load(POS) + i  # cache position of each token
    if head < n_heads + n_kv_heads:
        cos1 = tl.load(COS + i[:, None] * D + d[None, :], mask=ok[:, None], other=0.0).to(tl.float32)
        cos2 = tl.load(COS + i[:, None] * D + HALF + d[None, :], mask=ok[:, None], other=0.0).to(tl.float32)
        sin1 = tl.load(SIN + i[:, None] * D + d[None, :], mask=ok[:, None], other=0.0).to(tl.float32)
        sin2 = tl.load(SIN + i[:, None] * D + HALF + d[None, :], mask=ok[:, None], other=0.0).to(tl.float32)
        y1 = x1 * cos1 - x2 * sin1  # rotate-half: [x1, x2] * cos + [-x2, x1] * sin
        y2 = x2 * cos2 + x1 * sin2
        if head < n_heads:
            dst = Q + tok[:, None] * stride_qt + head * stride_qh + d[None, :]
            tl.store(dst, y1.to(Q.dtype.element_ty), mask=ok[:, None])
            tl.store(dst + HALF, y2.to(Q.dtype.element_ty), mask=ok[:, None])
        else:
            _store_kv(KC, KS, y1, y2, b, head - n_heads, pos, ok, d, stride_ch, stride_cs, stride_sh, n_kv_heads,
                      HALF, FP8, ROUND_E4M3)
    else:
        _store_kv(VC, VS, x1, x2, b, head - n_heads - n_kv_heads, pos, ok, d, stride_ch, stride_cs, stride_sh,
                  n_kv_heads, HALF, FP8, ROUND_E4M3)


@triton.jit
def _round_e4m3(y):
    """y rounded to the e4m3 grid in float32 (3 mantissa bits; subnormal below 2^-6), so that the cast
    to e4m3 is exact. Only under Triton's CPU interpreter: its own cast (Triton 3.6) rounds values just
    below a power of two into the binade below (124 -> 64), which the GPU's conversion does not."""
    a = tl.abs(y)
    step = tl.exp2(tl.floor(tl.log2(tl.maximum(a, 0.015625))) - 3.0)
    r = tl.floor(a / step + 0.5) * step
    return tl.where(y < 0, -r, r)


@triton.jit
def _store_kv(C, S, y1, y2, b, kvh, pos, ok, d, stride_ch, stride_cs, stride_sh, n_kv_heads,
              HALF: tl.constexpr, FP8: tl.constexpr, ROUND_E4M3: tl.constexpr):
    """Write rows [y1 | y2] of one key/value head at their cache positions (8-bit with a scale with FP8)."""
    row = (b * n_kv_heads + kvh).to(tl.int64)
    dst = C + row[:, None] * stride_ch + pos[:, None] * stride_cs + d[None, :]
    if FP8:
        amax = tl.maximum(tl.max(tl.abs(y1), 1), tl.max(tl.abs(y2), 1))
        scale = tl.maximum(amax / 448.0, 1e-12)
        y1 = tl.minimum(tl.maximum(y1 / scale[:, None], -448.0), 448.0)  # rounding must not pass the range
        y2 = tl.minimum(tl.maximum(y2 / scale[:, None], -448.0), 448.0)
        if ROUND_E4M3:
            y1 = _round_e4m3(y1)
            y2 = _round_e4m3(y2)
        tl.store(S + row * stride_sh + pos, scale, mask=ok)
    tl.store(dst, y1.to(C.dtype.element_ty), mask=ok[:, None])
    tl.store(dst + HALF, y2.to(C.dtype.element_ty), mask=ok[:, None])


def qkv_rotary_cache(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, pos: torch.Tensor,
                     keys: torch.Tensor, values: torch.Tensor, n_heads: int, n_kv_heads: int,
                     out: torch.Tensor | None = None, k_scale: torch.Tensor | None = None,
                     v_scale: torch.Tensor | None = None) -> torch.Tensor:
    """qkv [B, n, (Hq + 2 Hkv) D] (the fused projection), cos and sin [n, D] for the chunk's positions,
    ``pos`` [1] the position of its first token (a device tensor), keys and values one layer of the
    cache [B, Hkv, S, D] (contiguous; e4m3 with k_scale, v_scale [B, Hkv, S] for an 8-bit cache) -> q [B, Hq, n, D]
    rotated (a view of a [B, n, Hq, D] buffer, ``out`` when given); rotated k and v are written into the
    cache at pos.."""
    B, n, _ = qkv.shape
    kv = KVLayer(keys, values, k_scale, v_scale)
    D = keys.shape[-1]
    if not keys.is_contiguous() or not values.is_contiguous() or qkv.stride(-1) != 1:
        raise ValueError("qkv_rotary_cache needs a contiguous cache layer and projection rows")
    flat = qkv.reshape(B * n, -1)
    q = torch.empty(B, n, n_heads, D, device=qkv.device, dtype=qkv.dtype) if out is None else out
    if q.shape != (B, n, n_heads, D) or not q.is_contiguous():
        raise ValueError(f"out must be a contiguous [B, n, Hq, D] buffer, not {tuple(q.shape)}")
    fp8 = kv.quantized
    k_scale, v_scale = (kv.k_scale, kv.v_scale) if fp8 else (keys, values)  # unused without FP8
    block_t = 32
    on = pdl.enabled(qkv.device)
    _qkv_rotary_kernel[(triton.cdiv(B * n, block_t), n_heads + 2 * n_kv_heads)](
        flat, cos.contiguous(), sin.contiguous(), pos, q, keys, values, k_scale, v_scale,
        flat.stride(0), q.stride(1), q.stride(2), keys.stride(2), keys.stride(1),
        k_scale.stride(1) if fp8 else 0,
        B * n, n, n_heads, n_kv_heads, D=D, BLOCK_T=block_t, FP8=fp8, ROUND_E4M3=fp8 and INTERPRETED, PDL=on,
        **pdl.launch(on))
    return q.transpose(1, 2)


@triton.jit
def _silu_mul_kernel(GU, Y, stride_g, stride_y, n_cols, BLOCK: tl.constexpr, PDL: tl.constexpr = False):
    pdl.gate(PDL)
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ok = cols < n_cols
    gate = tl.load(GU + row * stride_g + cols, mask=ok, other=0.0).to(tl.float32)
    up = tl.load(GU + row * stride_g + n_cols + cols, mask=ok, other=0.0)
    silu = (gate / (1.0 + tl.exp(-gate))).to(up.dtype)
    tl.store(Y + row * stride_y + cols, silu * up, mask=ok)


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """[..., 2I] (gate then up) -> silu(gate) * up [..., I]."""
    g2 = _rows(gate_up)
    n_cols = g2.shape[1] // 2
    y = torch.empty(g2.shape[0], n_cols, device=g2.device, dtype=g2.dtype)
    block = 1024
    on = pdl.enabled(g2.device)
    _silu_mul_kernel[(g2.shape[0], triton.cdiv(n_cols, block))](g2, y, g2.stride(0), y.stride(0), n_cols, BLOCK=block,
                                                                PDL=on, **pdl.launch(on))
    return y.view(*gate_up.shape[:-1], n_cols)

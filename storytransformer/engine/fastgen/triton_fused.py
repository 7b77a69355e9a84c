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

import torch
import triton
import triton.language as tl


@triton.jit
def _rms_norm_kernel(X, R, W, Y, stride_x, stride_r, stride_y, n_cols, eps,
                     ADD: tl.constexpr, BLOCK: tl.constexpr):
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
    _rms_norm_kernel[(x2.shape[0],)](x2, x2, weight, y, x2.stride(0), x2.stride(0), y.stride(0), x2.shape[1], eps,
                                     ADD=False, BLOCK=triton.next_power_of_2(x2.shape[1]))
    return y.view(x.shape)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x += residual in place (x must be contiguous); returns norm(x) * weight."""
    x2, r2 = _rows(x), _rows(residual)
    if x2.data_ptr() != x.data_ptr() or not x.is_contiguous():
        raise ValueError("add_rms_norm updates x in place: it must be contiguous")
    y = torch.empty_like(x2)
    _rms_norm_kernel[(x2.shape[0],)](x2, r2, weight, y, x2.stride(0), r2.stride(0), y.stride(0), x2.shape[1], eps,
                                     ADD=True, BLOCK=triton.next_power_of_2(x2.shape[1]))
    return y.view(x.shape)


@triton.jit
def _qkv_rotary_kernel(QKV, COS, SIN, POS, Q, KC, VC,
                       stride_t, stride_qt, stride_qh, stride_cs, stride_ch,
                       n_tokens, tokens_per_batch, n_heads, n_kv_heads,
                       D: tl.constexpr, BLOCK_T: tl.constexpr):
    """Program (token block, head). Heads 0..Hq-1 are queries, then Hkv keys, then Hkv values."""
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
        else:
            kvh = head - n_heads
            dst = KC + (b * n_kv_heads + kvh)[:, None] * stride_ch + pos[:, None] * stride_cs + d[None, :]
        tl.store(dst, y1.to(Q.dtype.element_ty), mask=ok[:, None])
        tl.store(dst + HALF, y2.to(Q.dtype.element_ty), mask=ok[:, None])
    else:
        kvh = head - n_heads - n_kv_heads
        dst = VC + (b * n_kv_heads + kvh)[:, None] * stride_ch + pos[:, None] * stride_cs + d[None, :]
        tl.store(dst, x1.to(Q.dtype.element_ty), mask=ok[:, None])
        tl.store(dst + HALF, x2.to(Q.dtype.element_ty), mask=ok[:, None])


def qkv_rotary_cache(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, pos: torch.Tensor,
                     keys: torch.Tensor, values: torch.Tensor, n_heads: int, n_kv_heads: int,
                     out: torch.Tensor | None = None) -> torch.Tensor:
    """qkv [B, n, (Hq + 2 Hkv) D] (the fused projection), cos and sin [n, D] for the chunk's positions,
    ``pos`` [1] the position of its first token (a device tensor), keys and values one layer of the
    cache [B, Hkv, S, D] (contiguous) -> q [B, Hq, n, D] rotated (a view of a [B, n, Hq, D] buffer,
    ``out`` when given); rotated k and v are written into the cache at pos.."""
    B, n, _ = qkv.shape
    D = keys.shape[-1]
    if not keys.is_contiguous() or not values.is_contiguous() or qkv.stride(-1) != 1:
        raise ValueError("qkv_rotary_cache needs a contiguous cache layer and projection rows")
    flat = qkv.reshape(B * n, -1)
    q = torch.empty(B, n, n_heads, D, device=qkv.device, dtype=qkv.dtype) if out is None else out
    if q.shape != (B, n, n_heads, D) or not q.is_contiguous():
        raise ValueError(f"out must be a contiguous [B, n, Hq, D] buffer, not {tuple(q.shape)}")
    block_t = 32
    _qkv_rotary_kernel[(triton.cdiv(B * n, block_t), n_heads + 2 * n_kv_heads)](
        flat, cos.contiguous(), sin.contiguous(), pos, q, keys, values,
        flat.stride(0), q.stride(1), q.stride(2), keys.stride(2), keys.stride(1),
        B * n, n, n_heads, n_kv_heads, D=D, BLOCK_T=block_t)
    return q.transpose(1, 2)


@triton.jit
def _silu_mul_kernel(GU, Y, stride_g, stride_y, n_cols, BLOCK: tl.constexpr):
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
    _silu_mul_kernel[(g2.shape[0], triton.cdiv(n_cols, block))](g2, y, g2.stride(0), y.stride(0), n_cols, BLOCK=block)
    return y.view(*gate_up.shape[:-1], n_cols)

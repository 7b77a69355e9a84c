"""The elementwise stages between the matrix products, in two interchangeable sets.

``select(fused=True)`` gives the Triton kernels of triton_fused.py (CUDA, or Triton's interpreter);
``select(fused=False)`` the same contracts in plain torch, for the CPU and as their reference:

  rms_norm(x, w, eps)                 -> norm(x) * w
  add_rms_norm(x, r, w, eps)          x += r in place -> norm(x) * w
  qkv_rotary_cache(qkv, cos, sin, pos, keys, values, Hq, Hkv, out=None, k_scale=None, v_scale=None)
                                      -> rotated q [B, Hq, n, D]; rotated k and v written to the cache
                                         at pos.. (8-bit with their scales for an fp8 cache)
  silu_mul(gate_up)                   -> silu(gate) * up
"""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

import torch
from torch.nn import functional as F

from .kv_cache import KVLayer, quantize_fp8


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * weight


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    x.add_(residual)
    return rms_norm(x, weight, eps)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half rotary embedding. x [B, H, n, D]; cos, sin [n, D]."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def qkv_rotary_cache(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, pos: torch.Tensor,
                     keys: torch.Tensor, values: torch.Tensor, n_heads: int, n_kv_heads: int,
                     out: torch.Tensor | None = None, k_scale: torch.Tensor | None = None,
                     v_scale: torch.Tensor | None = None) -> torch.Tensor:
    B, n, _ = qkv.shape
    kv = KVLayer(keys, values, k_scale, v_scale)
    D = keys.shape[-1]
    q, k, v = qkv.split([n_heads * D, n_kv_heads * D, n_kv_heads * D], dim=-1)
    q = apply_rotary(q.view(B, n, n_heads, D).transpose(1, 2), cos, sin)
    k = apply_rotary(k.view(B, n, n_kv_heads, D).transpose(1, 2), cos, sin)
    v = v.view(B, n, n_kv_heads, D).transpose(1, 2)
    positions = pos + torch.arange(n, device=qkv.device)  # on the device: graph-safe
    if kv.quantized:
        for new, values, scales in ((k, kv.k, kv.k_scale), (v, kv.v, kv.v_scale)):
            q8, scale = quantize_fp8(new)
            values.view(torch.uint8).index_copy_(2, positions, q8.view(torch.uint8))  # no fp8 index_copy on CPU
            scales.index_copy_(2, positions, scale)
    else:
        kv.k.index_copy_(2, positions, k)
        kv.v.index_copy_(2, positions, v)
    if out is None:
        return q
    out.copy_(q.transpose(1, 2))
    return out.transpose(1, 2)


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate) * up


TORCH = SimpleNamespace(rms_norm=rms_norm, add_rms_norm=add_rms_norm, qkv_rotary_cache=qkv_rotary_cache,
                        silu_mul=silu_mul)


@lru_cache(maxsize=None)
def select(fused: bool) -> SimpleNamespace:
    if not fused:
        return TORCH
    from . import triton_fused  # imports triton: only when the fused stages are asked for

    return SimpleNamespace(rms_norm=triton_fused.rms_norm, add_rms_norm=triton_fused.add_rms_norm,
                           qkv_rotary_cache=triton_fused.qkv_rotary_cache, silu_mul=triton_fused.silu_mul)

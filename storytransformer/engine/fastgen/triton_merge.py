"""Combine two partial attentions by their log-sum-exp in one pass (see split_attention.py).

Each program takes BLOCK_M query rows of one head: it reads both partial outputs and their
statistics once and writes the result straight into the caller's output view, in float32 inside.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _merge_kernel(O1, L1, O2, L2, OUT, n_heads, m,
                  so1b, so1h, so1m, sl1b, sl1h, sl1m, so2b, so2h, so2m, sl2b, sl2h, sl2m, sob, soh, som,
                  D: tl.constexpr, BLOCK_M: tl.constexpr):
    bh = tl.program_id(0)
    b = (bh // n_heads).to(tl.int64)
    h = (bh % n_heads).to(tl.int64)
    rows = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    valid = rows < m
    rows = rows.to(tl.int64)
    cols = tl.arange(0, D)
    l1 = tl.load(L1 + b * sl1b + h * sl1h + rows * sl1m, mask=valid, other=0.0)
    l2 = tl.load(L2 + b * sl2b + h * sl2h + rows * sl2m, mask=valid, other=0.0)
    w1 = 1.0 / (1.0 + tl.exp(l2 - l1))  # e^l1 / (e^l1 + e^l2)
    o1 = tl.load(O1 + b * so1b + h * so1h + rows[:, None] * so1m + cols[None, :], mask=valid[:, None], other=0.0)
    o2 = tl.load(O2 + b * so2b + h * so2h + rows[:, None] * so2m + cols[None, :], mask=valid[:, None], other=0.0)
    o1 = o1.to(tl.float32)
    o2 = o2.to(tl.float32)
    result = o2 + (o1 - o2) * w1[:, None]
    tl.store(OUT + b * sob + h * soh + rows[:, None] * som + cols[None, :], result.to(OUT.dtype.element_ty),
             mask=valid[:, None])


def merge(o_prev: torch.Tensor, lse_prev: torch.Tensor, o_diag: torch.Tensor, lse_diag: torch.Tensor,
          out: torch.Tensor) -> None:
    """o_* and out [B, H, m, D] (last dim contiguous), lse_* [B, H, m] or [B, H, m, 1] float32."""
    B, H, m, D = out.shape
    for t in (o_prev, o_diag, out):
        if t.stride(-1) != 1:
            raise ValueError("merge needs the head dimension contiguous")
    block_m = 64
    _merge_kernel[(B * H, triton.cdiv(m, block_m))](
        o_prev, lse_prev, o_diag, lse_diag, out, H, m,
        *o_prev.stride()[:3], *lse_prev.stride()[:3], *o_diag.stride()[:3], *lse_diag.stride()[:3], *out.stride()[:3],
        D=D, BLOCK_M=block_m)

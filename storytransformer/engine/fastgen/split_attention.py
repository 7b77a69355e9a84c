"""Long causal attention as the pieces a fast kernel runs at its best, merged by log-sum-exp.

cuDNN's attention is fastest on balanced shapes: on an H200 a causal square of 128k queries ran at
558 TFLOP/s, but the same square cut into 8k-query segments, each a causal square over its own keys
plus a full (unmasked) rectangle over every key before it, ran at 614 TFLOP/s, and it needs no
bottom-right causal mask, which torch gives cuDNN only as a slow explicit mask (about 270 TFLOP/s).
The two partial results of a segment carry their log-sum-exp, so they combine exactly:

    out = (o_prev * e^lse_prev + o_diag * e^lse_diag) / (e^lse_prev + e^lse_diag)

``partial(q, k, v, causal) -> (o [B, Hq, m, D], lse [B, Hq, m] or [B, Hq, m, 1], natural log)`` is the
kernel (cuDNN on a GPU, ``reference_partial`` in tests); ``merge`` writes the combination into the
output (the Triton kernel of triton_merge.py on a GPU, ``merge_reference`` in plain torch).
"""

from __future__ import annotations

import math

import torch

SEGMENT = 8192  # queries per segment: 8k, 16k and 32k measured within 1 % at 128k, 8k best at 32k


def segments(n: int, segment: int = SEGMENT) -> list[tuple[int, int]]:
    """Query ranges [a, b) that cover 0..n, ``segment`` long except the last."""
    if segment < 1:
        raise ValueError(f"segment must be at least 1, not {segment}")
    return [(a, min(a + segment, n)) for a in range(0, n, segment)]


def split_prefill(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, partial, merge,
                  segment: int = SEGMENT) -> torch.Tensor:
    """q [B, Hq, n, D] at the last n of L positions, k and v [B, Hkv, L, D] -> [B, Hq, n, D] over a
    [B, n, Hq, D] buffer (the output projection reads it without a copy), causal aligned bottom-right."""
    B, Hq, n, D = q.shape
    start = k.shape[2] - n
    if start < 0:
        raise ValueError(f"{n} queries but only {k.shape[2]} key positions")
    out = torch.empty(B, n, Hq, D, device=q.device, dtype=q.dtype).transpose(1, 2)
    for a, b in segments(n, segment):
        qs, first, last = q[:, :, a:b], start + a, start + b
        o_diag, lse_diag = partial(qs, k[:, :, first:last], v[:, :, first:last], True)
        if first == 0:
            out[:, :, a:b].copy_(o_diag)
            continue
        o_prev, lse_prev = partial(qs, k[:, :, :first], v[:, :, :first], False)
        merge(o_prev, lse_prev, o_diag, lse_diag, out[:, :, a:b])
    return out


def cudnn_partial(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool):
    """cuDNN attention with its log-sum-exp (grouped key/value heads read natively)."""
    result = torch.ops.aten._scaled_dot_product_cudnn_attention(q, k, v, None, True, 0.0, causal, False)
    return result[0], result[1]


def reference_partial(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool):
    """Explicit softmax attention with its log-sum-exp, in float32 (tests, and the CPU)."""
    group = q.shape[1] // k.shape[1]
    k, v = (x.repeat_interleave(group, dim=1).float() for x in (k, v))
    scores = torch.matmul(q.float(), k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal:  # square pieces only: top-left and bottom-right alignment agree
        m, L = scores.shape[-2:]
        scores = scores.masked_fill(torch.ones(m, L, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    return torch.matmul(torch.exp(scores - lse[..., None]), v).to(q.dtype), lse


def merge_reference(o_prev, lse_prev, o_diag, lse_diag, out: torch.Tensor) -> None:
    """out = the two partial attentions combined by their log-sum-exp, in float32."""
    lse_prev, lse_diag = (x.reshape(x.shape[:3]).float()[..., None] for x in (lse_prev, lse_diag))
    w_prev = torch.sigmoid(lse_prev - lse_diag)  # e^a / (e^a + e^b)
    out.copy_(o_diag.float() + (o_prev.float() - o_diag.float()) * w_prev)

"""Column orders that put both halves of an output pair in one column tile of the int4 decode kernel.

w13's gate and up columns, and the two halves of each q, k or v head that rotary pairs, are stored
interleaved in chunks of half a tile, so that the last program of a tile holds both halves of the same
outputs and can finish them itself (SwiGLU, rotary and the cache write: triton_int4.py). Where the plain
product runs instead, its columns are put back in order with the inverse.
"""

from __future__ import annotations

import torch


def interleave_halves(t: torch.Tensor, chunk: int, group: int | None = None) -> torch.Tensor:
    """Rows in groups of ``group`` (all of them by default), each group [first half | second half] -> its halves
    in chunks: first 0..chunk-1, second 0..chunk-1, first chunk.., ... (w13: gate and up; wqkv: the two halves
    of each head that rotary pairs)."""
    group = group or t.shape[0]
    if t.shape[0] % group or group % (2 * chunk):
        raise ValueError(f"interleaving halves needs groups of a multiple of {2 * chunk} rows; got {t.shape[0]} "
                         f"rows in groups of {group}")
    return t.reshape(-1, 2, group // (2 * chunk), chunk, *t.shape[1:]).transpose(1, 2).reshape(t.shape)


def deinterleave_halves(y: torch.Tensor, chunk: int, group: int | None = None) -> torch.Tensor:
    """The inverse along the last dimension: [..., N] interleaved columns -> each group's halves in order."""
    lead, width = y.shape[:-1], y.shape[-1]
    group = group or width
    return y.reshape(*lead, -1, group // (2 * chunk), 2, chunk).transpose(-3, -2).reshape(*lead, width)


def interleave_gate_up(t: torch.Tensor, chunk: int) -> torch.Tensor:
    """[2I, ...] gate rows then up rows -> rows in chunks: gate 0..chunk-1, up 0..chunk-1, gate chunk.., ..."""
    return interleave_halves(t, chunk)


def deinterleave_gate_up(y: torch.Tensor, chunk: int) -> torch.Tensor:
    """The inverse along the last dimension: [..., 2I] interleaved columns -> [..., 2I] gate then up."""
    return deinterleave_halves(y, chunk)

"""4-bit weight-only linear layers (issue 18): every matrix of the decoder layers as packed 4-bit codes
with a bf16 scale and minimum per group of 128 inputs, multiplied by the fused kernels of
triton_int4.py on a GPU and by plain torch on the CPU. The output head stays bf16, as in quantize.py, unless
asked for (``quantize_linears_int4(model, head=True)``: 0.29 GB instead of 1.09 for the 7.6B shape's head);
``fuse_swiglu=True`` lets each layer's w2 make silu(gate) * up itself from w13's output while decoding;
``swiglu_epilogue=True`` lets each w13 make it in the last step of its own product (columns interleaved), and
``rotary_epilogue=True`` each wqkv rotate q and k and write the cache in the last step of its own.
Quantised on the weight's own device, one matrix at a time (in row chunks), so the peak is the bf16
model plus one matrix. Packing layout: see triton_int4.py."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .interleave import deinterleave_gate_up, deinterleave_halves, interleave_halves

BLOCK = 128  # inputs per planar block of the packing (16 words x 8 nibbles)
DECODE_ROWS = 8  # activations of at most this many rows take the fused decode kernel
_ROW_CHUNK = 4096  # rows quantised at once: bounds the float32 temporaries


def quantize_int4(weight: torch.Tensor, group_size: int = 128,
                  pad: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """weight [N, K] -> (qweight [K/8, N] int32, scales [K/group, N] bf16, mins [K/group, N] bf16) with
    weight ~= code * scale + min, code = round((w - min) / scale) in 0..15 (asymmetric, all 16 levels).
    ``pad``: a K that is not a multiple of the group is zero-padded to the next one (SmolLM2's 576 inputs
    become 640: the last group quantises 64 real weights with 64 zeros, the kernels read the padded inputs
    as 0); the packed K is then larger than the layer's."""
    N, K = weight.shape
    if pad and group_size % BLOCK == 0 and K % group_size:
        weight = torch.nn.functional.pad(weight, (0, group_size - K % group_size))
        N, K = weight.shape
    if group_size % BLOCK or K % group_size:
        raise ValueError(f"int4 needs a group size that is a multiple of {BLOCK} and divides in_features; "
                         f"got group_size={group_size}, in_features={K}")
    G = K // group_size
    qweight = torch.empty(K // 8, N, dtype=torch.int32, device=weight.device)
    scales = torch.empty(G, N, dtype=torch.bfloat16, device=weight.device)
    mins = torch.empty_like(scales)
    shifts = torch.arange(0, 32, 4, device=weight.device, dtype=torch.int64).view(1, 1, 8, 1)
    for r0 in range(0, N, _ROW_CHUNK):
        w = weight[r0:r0 + _ROW_CHUNK].float().view(-1, G, group_size)
        rows = w.shape[0]
        lo, hi = w.amin(-1), w.amax(-1)
        s = ((hi - lo) / 15).to(torch.bfloat16)
        z = lo.to(torch.bfloat16)
        s32 = s.float().clamp_min(torch.finfo(torch.float32).tiny)  # an all-equal group: every code gives min
        codes = ((w - z.float()[..., None]) / s32[..., None]).round_().clamp_(0, 15).to(torch.int64)
        # planar packing: word row i of each 128-block holds in nibble j the code of input 16 j + i
        words = (codes.view(rows, K // BLOCK, 8, 16) << shifts).sum(2)  # [rows, K/128, 16] in 0 .. 2^32 - 1
        words = torch.where(words >= 2 ** 31, words - 2 ** 32, words)
        qweight[:, r0:r0 + rows] = words.view(rows, K // 8).t().to(torch.int32)
        scales[:, r0:r0 + rows], mins[:, r0:r0 + rows] = s.t(), z.t()
    return qweight, scales, mins


def dequantize_int4(qweight: torch.Tensor, scales: torch.Tensor, mins: torch.Tensor, group_size: int,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The plain-torch reference: packed codes -> the [N, K] weight in ``dtype``."""
    K, N = qweight.shape[0] * 8, qweight.shape[1]
    words = qweight.view(K // BLOCK, 1, 16, N)
    shifts = torch.arange(0, 32, 4, device=qweight.device, dtype=torch.int32).view(1, 8, 1, 1)
    codes = ((words >> shifts) & 0xF).reshape(K, N).float()  # [K/128, 8 planes, 16, N] is input order
    s = scales.float().repeat_interleave(group_size, dim=0)
    z = mins.float().repeat_interleave(group_size, dim=0)
    return (codes * s + z).t().to(dtype)


class Int4Linear(nn.Module):
    """A frozen nn.Linear whose weight is stored as 4-bit codes (about 0.53 bytes a weight at group 128)."""

    def __init__(self, in_features: int, out_features: int, group_size: int, qweight: torch.Tensor,
                 scales: torch.Tensor, mins: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        self.register_buffer("qweight", qweight)
        self.register_buffer("scales", scales)
        self.register_buffer("mins", mins)
        self.register_buffer("bias", bias)
        # one zeroed counter per column tile (tiles of 16 columns at the narrowest) for the decode kernel's
        # fused split sum; not saved with the weights, moved with the module
        self.register_buffer("counters", torch.zeros((out_features + 15) // 16, dtype=torch.int32,
                                                     device=qweight.device), persistent=False)
        self.fuse_swiglu = False  # see swiglu(); set by quantize_linears_int4(fuse_swiglu=True) on each w2
        self.glu_chunk = 0  # w13 quantised with interleaved gate and up columns: see gated()
        self.rope_chunk, self.head_dim = 0, 0  # wqkv with each head's halves interleaved: see rotary_into()

    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Linear, group_size: int = 128) -> "Int4Linear":
        """Quantise ``linear`` on its weight's device; the bias keeps its dtype."""
        qweight, scales, mins = quantize_int4(linear.weight.data, group_size, pad=True)
        bias = linear.bias.data.clone() if linear.bias is not None else None
        return cls(linear.in_features, linear.out_features, group_size, qweight, scales, mins, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if x.is_cuda:
            from . import triton_int4
            if x2.shape[0] <= DECODE_ROWS:
                y = triton_int4.int4_decode(x2, self.qweight, self.scales, self.mins, self.group_size, self.bias,
                                            counters=self.counters)
            else:
                y = triton_int4.int4_prefill(x2, self.qweight, self.scales, self.mins, self.group_size, self.bias)
        else:
            w = dequantize_int4(self.qweight, self.scales, self.mins, self.group_size, x.dtype)
            y = nn.functional.linear(x2, w[:, :self.in_features], self.bias)  # padded inputs dropped
        return y.view(*lead, self.out_features)

    def swiglu(self, gate_up: torch.Tensor, silu_mul: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """self(silu_mul(gate_up)) for gate_up [..., 2 * in_features] (gate then up). At most DECODE_ROWS rows on
        CUDA the decode kernel makes silu(gate) * up as it loads its activations (one kernel instead of two,
        graph-safe, rounded as the torch reference); anywhere else silu_mul runs first."""
        lead = gate_up.shape[:-1]
        g2 = gate_up.reshape(-1, gate_up.shape[-1])
        if not (g2.is_cuda and g2.shape[0] <= DECODE_ROWS and g2.shape[1] == 2 * self.in_features):
            return self(silu_mul(gate_up))
        from . import triton_int4
        y = triton_int4.int4_decode(g2, self.qweight, self.scales, self.mins, self.group_size, self.bias,
                                    counters=self.counters, swiglu=True)
        return y.view(*lead, self.out_features)

    def regroup_gate_up(self, chunk: int) -> None:
        """In place: store this fused gate and up projection's columns interleaved in chunks of ``chunk`` (0:
        gate then up), from whatever order they are in now. The codes move with their columns (a permutation)."""
        self._permute_columns((self.glu_chunk, None), (chunk, None))
        self.glu_chunk = chunk

    def regroup_heads(self, chunk: int, head_dim: int) -> None:
        """In place: store this fused q, k, v projection's columns with the two halves of each head (the dims
        rotary pairs) interleaved in chunks of ``chunk`` (0: in order), from whatever order they are in now."""
        self._permute_columns((self.rope_chunk, self.head_dim), (chunk, head_dim))
        self.rope_chunk, self.head_dim = chunk, head_dim if chunk else 0

    @torch.no_grad()
    def _permute_columns(self, now: tuple[int, int | None], wanted: tuple[int, int | None]) -> None:
        """Output columns interleaved as (chunk, group) ``now`` -> as ``wanted`` (chunk 0: in order)."""
        for name in ("qweight", "scales", "mins", "bias"):
            t = getattr(self, name)
            if t is None:
                continue
            if now[0]:
                t = deinterleave_halves(t, *now)
            if wanted[0]:
                t = interleave_halves(t.movedim(-1, 0), *wanted).movedim(0, -1)
            setattr(self, name, t.contiguous())

    def rotary_into(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, pos: torch.Tensor,
                    keys: torch.Tensor, values: torch.Tensor, n_heads: int, n_kv_heads: int, out: torch.Tensor,
                    qkv_rotary_cache: Callable[..., torch.Tensor], k_scale: torch.Tensor | None = None,
                    v_scale: torch.Tensor | None = None) -> None:
        """qkv_rotary_cache(self(x), cos, sin, pos, keys, values, ...): q rotated into ``out``, k rotated and v
        written into the cache layer at pos. Decoding one row on CUDA into a bf16 cache with rope_chunk set, one
        launch: each column tile holds rope_chunk dims of a head's first half and the same dims of its second
        half, and the last program of the tile rotates and writes them as it sums its splits (no qkv row, no
        rotary kernel). Anywhere else the product, its columns put back in order, then ``qkv_rotary_cache``."""
        x2 = x.reshape(-1, self.in_features)
        if (self.rope_chunk and x2.is_cuda and x2.shape[0] == 1 and k_scale is None and keys.shape[0] == 1
                and out.is_contiguous()):
            from . import triton_int4
            triton_int4.int4_decode(x2, self.qweight, self.scales, self.mins, self.group_size, self.bias,
                                    counters=self.counters,
                                    rope=triton_int4.RopeTarget(cos, sin, pos, out, keys, values, n_heads, n_kv_heads,
                                                                self.rope_chunk))
            return
        y = self(x)
        if self.rope_chunk:
            y = deinterleave_halves(y, self.rope_chunk, self.head_dim)
        qkv_rotary_cache(y, cos, sin, pos, keys, values, n_heads, n_kv_heads, out=out, k_scale=k_scale,
                         v_scale=v_scale)

    def gated(self, x: torch.Tensor, silu_mul: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """silu(gate) * up [..., out_features / 2] of this fused gate and up projection (glu_chunk set). At most
        DECODE_ROWS rows on CUDA the decode kernel makes it as it sums its splits: each column tile holds
        glu_chunk gate columns and their glu_chunk up columns, so no [gate | up] row is written and no silu_mul
        kernel runs (graph-safe, rounded as the torch reference). Anywhere else the product's columns are put
        back in [gate | up] order and ``silu_mul`` runs on them."""
        if not self.glu_chunk:
            return silu_mul(self(x))
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if x2.is_cuda and x2.shape[0] <= DECODE_ROWS:
            from . import triton_int4
            y = triton_int4.int4_decode(x2, self.qweight, self.scales, self.mins, self.group_size, self.bias,
                                        counters=self.counters, glu_chunk=self.glu_chunk)
            return y.view(*lead, self.out_features // 2)
        return silu_mul(deinterleave_gate_up(self(x), self.glu_chunk))

    def extra_repr(self) -> str:
        glu = f", glu_chunk={self.glu_chunk}" if self.glu_chunk else ""
        rope = f", rope_chunk={self.rope_chunk}" if self.rope_chunk else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}"
                f"{glu}{rope}")


def quantize_linears_int4(model: nn.Module, group_size: int = 128, head: bool = False,
                          fuse_swiglu: bool = False, swiglu_epilogue: bool = False,
                          rotary_epilogue: bool = False) -> int:
    """Replace the nn.Linear modules of ``model.layers`` by Int4Linear, one at a time; returns how many.
    ``head``: the output head too (a tied head gets its own 4-bit copy; the embedding stays as it is).
    ``fuse_swiglu``: each layer's ``feed_forward.w2`` takes w13's output and makes silu(gate) * up itself when
    decoding (Int4Linear.swiglu, used by model.Transformer.forward). ``swiglu_epilogue``: each
    ``feed_forward.w13`` is stored with interleaved gate and up columns and makes silu(gate) * up as it sums
    its splits (Int4Linear.gated); it wins over ``fuse_swiglu``. ``rotary_epilogue``: each ``attention.wqkv``
    is stored with the halves of each head interleaved and, when decoding, rotates q and k and writes k and v
    into the cache as it sums its splits (Int4Linear.rotary_into)."""
    count = 0
    for layer in model.layers:
        for parent in layer.modules():
            for name in [n for n, c in parent.named_children() if type(c) is nn.Linear]:
                # only names are held, so each bf16 matrix is freed as soon as its replacement is set
                setattr(parent, name, Int4Linear.from_linear(getattr(parent, name), group_size))
                count += 1
        w2 = getattr(getattr(layer, "feed_forward", None), "w2", None)
        if isinstance(w2, Int4Linear):
            w2.fuse_swiglu = fuse_swiglu
        w13 = getattr(getattr(layer, "feed_forward", None), "w13", None)
        if swiglu_epilogue and isinstance(w13, Int4Linear):
            w13.regroup_gate_up(glu_chunk(w13.out_features, w13.in_features, w13.qweight.device))
        wqkv = getattr(getattr(layer, "attention", None), "wqkv", None)
        if rotary_epilogue and isinstance(wqkv, Int4Linear):
            head_dim = model.cfg.head_dim
            chunk = min(glu_chunk(wqkv.out_features, wqkv.in_features, wqkv.qweight.device), head_dim // 2)
            if chunk and (head_dim // 2) % chunk == 0:  # a narrower tile than swept where heads are small
                wqkv.regroup_heads(chunk, head_dim)
    if head and type(model.output) is nn.Linear:
        model.output = Int4Linear.from_linear(model.output, group_size)
        count += 1
    return count


def glu_chunk(out_features: int, in_features: int, device: torch.device | str = "cuda") -> int:
    """Half the width of the one-row decode tile of an [out_features, in_features] product: the chunk in which
    w13's gate and up columns (or wqkv's head halves) are interleaved, so that each tile holds both halves of
    the same outputs. Any chunk is correct; this one is the fast one. 0 where it does not divide the width."""
    try:
        from .triton_int4 import decode_config
    except ImportError:  # no Triton: the products run in torch, where any chunk does
        chunk = 32
    else:
        chunk = decode_config(1, out_features, -(-in_features // BLOCK) * BLOCK, device).block_n // 2
    return chunk if out_features % (2 * chunk) == 0 else 0


def weights_bytes(module: nn.Module) -> int:
    """Bytes of every parameter and buffer of ``module`` (packed codes, scales, biases, norms...)."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)

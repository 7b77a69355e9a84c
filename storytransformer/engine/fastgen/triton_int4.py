"""4-bit weight-only matrix products in Triton: a fused dequantise-and-multiply kernel for decoding
(1 to 8 activation rows) and a dequantise kernel that feeds torch.matmul for prefill.

Why this layout. Decoding reads every weight once per step, so its time is the bytes read; the
kernel must stream the packed weights at full bandwidth, never write bf16 weights anywhere, and spend
only a few instructions per weight (at 4.3 TB/s an H200 must consume 8.5e12 weights/s with about 4
ALU operations each).

  qweight [K // 8, N] int32   eight 4-bit codes per word, output features (N) contiguous: a warp
                              reads consecutive columns with 16-byte coalesced loads, each thread
                              keeps several columns, so one activation value loaded into a register
                              serves all of them. Along K the codes are *planar* inside each block of
                              128 inputs: word row i (0..15) of block b holds, in nibble j (0..7), the
                              code of input k = 128 b + 16 j + i. Nibble plane j of a [16, BLOCK_N]
                              tile is one shift-and-mask away and pairs with 16 contiguous
                              activations. The packing is done once, at quantisation.
  scales, mins [K // group, N] bf16   w = code * scale + min (asymmetric), group a multiple of 128.
                              One 128-block lies in one group, so a tile's products are summed
                              first and scaled once per column: sum(x * (c s + z)) = s sum(x c) + z sum(x).
                              The offset uses all 16 levels on groups not centred on zero for 2 bytes
                              per group (1.6 % of the weight bytes at group 128).

A code becomes a float without a conversion instruction: (code | 0x4B000000) read as float32 is
2^23 + code exactly. Per weight the portable "fma" tiles then cost a shift, a mask-or, a subtraction and
one multiply-add per activation row; the "dot" variant feeds the codes to the tensor cores
(activations padded to 16 rows). On CUDA the one-row tiles convert and multiply **two codes an instruction**
instead ("packed", inline PTX, see _ASM_CODES_F16): one lop3 makes two 16-bit floats of two nibbles
(1024 + c, FasterTransformer's magic number), one packed fma centres and scales them, and four packed fma
multiply a word's 8 codes by 8 activations, summed in f16 within the word and in float32 beyond it. K is
split over programs so that even 3584-wide outputs fill the GPU;
the splits write float32 partials, summed (with the bias, in x's dtype) either by a second small kernel
or, with ``fused_sum``, by the last split program of each column tile itself: each program counts
itself done on an int32 counter per tile (atomic, acquire-release), the one that sees the count
complete reads the partials back from L2 and writes the output, then sets the counter back to 0, so
the counters are zero again for the next call or graph replay. One launch instead of two saves 1 to 5
us a product at one row. Fixed grids, no host synchronisation, no data-dependent allocation: graph-safe.
An input width that is not a multiple of 128 (SmolLM2's 576) is zero-padded in the packed weight; the
kernels read activations past the real width as 0.

Where it stands on an H200 (docs/benchmarks/gpu_int4.md, 2026-12-03): one row, 28 layers' matrices 1.81
ms against bf16's 3.72 and NF4's 3.50 (2.06x faster than bf16; 2.2x the 4-bit bytes-read bound; the
float32 planes tiles took 2.62 ms); 4 and 8 rows level with bf16 (tensor-core tiles, unchanged). The packed
tiles' loop is 455 to 485 instructions for 16 words (about 4 a weight) where the planes tiles' was 1030 (8 a
weight), read in the SASS; w13 went 49.8 -> 32.8 us against a loads-only floor of 20 to 25 us.
What the sweeps showed: a first layout with rows contiguous along K and one activation load per
nibble plane streamed about 1 TB/s (as slow as ~16 instructions a weight would be; not profiled); a
program that streams many blocks alone is latency-bound (one program over all of K: 4x slower than
~500 programs); loading the activations once per block ("planes") was up to 1.47x faster at one row
(w13: 72.8 -> 50.1 us); the fused split sum took wqkv 11.2 -> 9.9, w2 30.9 -> 26.1, k 7.0 -> 4.3 us.
Masking the codes in place (``masked``: no shift per plane, the activation scaled by 16^-j instead;
about 3 instructions a weight instead of 4) was predicted faster and measured slower on the large
matrices (w13 49.5 -> 56.6 us at best; not profiled): only k/v picked it. Packed codes in bf16x2 (bf16's 7
mantissa bits take one nibble position a half: 3 shifts a word, not 1) were as fast as f16x2 and less
accurate (products rounded to 8 bits: 0.37 % of the largest output against 0.27 % for f16 and for the
float32 tiles), so the sweep keeps only f16. Tile 6 (a thread's words of one column added in f16x2 before
the scale: 8 % fewer instructions) measured 10 to 20 % slower on the large matrices (not profiled). Not yet
tried: packed codes for 2 to 8 rows (a first try with a row axis spilled registers), tensor cores at one
row, a persistent grid. The output head in int4 (2026-12-04): 100 us against bf16's 286 at one row, 0.15 ms
less a token. SwiGLU made while w2 loads its activations (SWIGLU): w2 17.8 -> 26.4 us at best, slower than
the separate silu_mul kernel it saves (every column tile makes each activation again). Epilogues of the fused
split sum (2026-12-04): with w13's gate and up columns interleaved per tile, the last program writes silu(gate) *
up (GLU); with wqkv's head halves interleaved, it rotates q and k and writes the cache (ROPE): together 2.28 ->
2.23 ms a token at 4k, 2.01x bf16. Measured slower: the next norm in the last tile of wo and w2, norms made as
the next product loads its activations, weights prefetched into L2 before the PDL wait.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from typing import NamedTuple

import torch
import triton
import triton.language as tl

from . import pdl

BLOCK = 128  # inputs per planar block: 16 word rows x 8 nibbles
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"  # Triton's CPU interpreter (tests)


@triton.jit
def _codes(w, j: tl.constexpr):
    """Nibble plane j of packed words -> float32 codes 0..15 (exact)."""
    bits = ((w >> (4 * j)) & 0xF) | 0x4B000000
    return bits.to(tl.float32, bitcast=True) - 8388608.0


@triton.jit
def _masked_codes(w, j: tl.constexpr):
    """Nibble j (0..4) of packed words -> float32 code * 16^j (exact): masked in place, no shift. The
    mask-and-or is one instruction; 2^23 + code * 16^j stays below 2^24 for j <= 4, so the float's
    exponent is untouched. The caller divides the activation by 16^j (exact) instead."""
    bits = (w & (15 << (4 * j))) | 0x4B000000
    return bits.to(tl.float32, bitcast=True) - 8388608.0


# Two codes an instruction (CUDA only, inline PTX; see ``packed_supported``). A bf16 whose exponent is 2^7
# and whose low 4 mantissa bits hold a code c is 128 + c exactly, so one lop3, (w >> 4 jj) & 0x000F000F |
# 0x43004300, turns nibbles jj and jj + 4 of a word into the bf16 pair (128 + c_jj, 128 + c_jj+4); one packed
# fma (x 1 - 136) leaves the centred codes c - 8 in -8..7 (exact; the kernel adds 8 scales to the minimum).
# Centred, the products that are rounded to bf16 are half as large, and so is their rounding error. 8 codes:
# 3 shifts, 4 lop3, 4 fma.bf16x2 (FasterTransformer / Marlin's magic-number conversion, with bf16's 7 mantissa
# bits: one nibble position a half, hence the shifts).
_ASM_CODES = tl.constexpr("""{
.reg .b32 q, one, off;
mov.b32 one, 0x3F803F80;
mov.b32 off, 0xC308C308;
lop3.b32 $0, $4, 0x000F000F, 0x43004300, 0xEA;
shr.u32 q, $4, 4;
lop3.b32 $1, q, 0x000F000F, 0x43004300, 0xEA;
shr.u32 q, $4, 8;
lop3.b32 $2, q, 0x000F000F, 0x43004300, 0xEA;
shr.u32 q, $4, 12;
lop3.b32 $3, q, 0x000F000F, 0x43004300, 0xEA;
fma.rn.bf16x2 $0, $0, one, off;
fma.rn.bf16x2 $1, $1, one, off;
fma.rn.bf16x2 $2, $2, one, off;
fma.rn.bf16x2 $3, $3, one, off;
}""")
# The word's 8 products with one activation row, two an instruction: x pairs (x[16 jj + i], x[64 + 16 jj + i])
# as bf16x2; four packed fma (products rounded to bf16, 4 terms a half), then the two halves added in float32.
_ASM_DOT8 = tl.constexpr("""{
.reg .b32 t, lo, hi, nz;
.reg .f32 fl, fh, fs;
mov.b32 nz, 0x80008000;
fma.rn.bf16x2 t, $1, $5, nz;
fma.rn.bf16x2 t, $2, $6, t;
fma.rn.bf16x2 t, $3, $7, t;
fma.rn.bf16x2 t, $4, $8, t;
shl.b32 lo, t, 16;
and.b32 hi, t, 0xFFFF0000;
mov.b32 fl, lo;
mov.b32 fh, hi;
add.f32 fs, fl, fh;
mov.b32 $0, fs;
}""")


# The same in f16 (10 mantissa bits: two nibble positions a half, FasterTransformer's form): 1 shift, 4 lop3,
# 4 fma for 8 codes. 1024 + c and 1024 + 16 c become (c - 8) / 64 exactly: the products are then at most
# |x| / 8, a word's four-term sums at most |x| / 2, so no sum overflows f16 for any activation f16 holds
# (activations are saturated to +-65504); products below f16's normal range (|(c - 8) x| < 0.004) keep an
# absolute precision of 6e-8. Pairs as in _ASM_CODES.
_ASM_CODES_F16 = tl.constexpr("""{
.reg .b32 q, a, b, c, d;
mov.b32 a, 0x24002400;
mov.b32 b, 0xCC08CC08;
mov.b32 c, 0x14001400;
mov.b32 d, 0xBC80BC80;
lop3.b32 $0, $4, 0x000F000F, 0x64006400, 0xEA;
lop3.b32 $1, $4, 0x00F000F0, 0x64006400, 0xEA;
shr.u32 q, $4, 8;
lop3.b32 $2, q, 0x000F000F, 0x64006400, 0xEA;
lop3.b32 $3, q, 0x00F000F0, 0x64006400, 0xEA;
fma.rn.f16x2 $0, $0, a, b;
fma.rn.f16x2 $1, $1, c, d;
fma.rn.f16x2 $2, $2, a, b;
fma.rn.f16x2 $3, $3, c, d;
}""")
# A word's 8 products in f16x2 (4 packed fma), the halves added in float32.
_ASM_DOT8_F16 = tl.constexpr("""{
.reg .b32 t, nz;
.reg .b16 hl, hh;
.reg .f32 fl, fh, fs;
mov.b32 nz, 0x80008000;
fma.rn.f16x2 t, $1, $5, nz;
fma.rn.f16x2 t, $2, $6, t;
fma.rn.f16x2 t, $3, $7, t;
fma.rn.f16x2 t, $4, $8, t;
mov.b32 {hl, hh}, t;
cvt.f32.f16 fl, hl;
cvt.f32.f16 fh, hh;
add.f32 fs, fl, fh;
mov.b32 $0, fs;
}""")
# Two float32 -> one f16x2 word (low half first), saturated to +-65504 rather than infinity.
_ASM_F16X2 = tl.constexpr("cvt.rn.satfinite.f16x2.f32 $0, $2, $1;")


@triton.jit
def _silu_mul_act(gate, up):
    """silu(gate) * up rounded as the torch reference (and triton_fused.silu_mul) rounds it: silu in float32,
    rounded to up's dtype, then the product rounded to it again."""
    g = gate.to(tl.float32)
    silu = (g / (1.0 + tl.exp(-g))).to(up.dtype)
    return (silu.to(tl.float32) * up.to(tl.float32)).to(up.dtype)


@triton.jit
def _act(P, mask, SWIGLU: tl.constexpr, HALF: tl.constexpr):
    """The activations at pointers P, masked ones read as 0. SWIGLU: the rows hold [gate | up] (w13's output,
    up HALF elements after its gate) and the activation is silu(gate) * up, made here while it is loaded."""
    if SWIGLU:
        return _silu_mul_act(tl.load(P, mask=mask, other=0.0), tl.load(P + HALF, mask=mask, other=0.0))
    else:
        return tl.load(P, mask=mask, other=0.0)


@triton.jit
def _act_all(P, SWIGLU: tl.constexpr, HALF: tl.constexpr):
    """As _act, nothing masked."""
    if SWIGLU:
        return _silu_mul_act(tl.load(P), tl.load(P + HALF))
    else:
        return tl.load(P)


@triton.jit
def _x_pair_f16(X, k0, xok, K_X: tl.constexpr, offs_i, EVEN: tl.constexpr, SWIGLU: tl.constexpr,
                HALF: tl.constexpr):
    """As _x_pair, the pair in f16x2 (each activation saturated to +-65504)."""
    k = k0 + offs_i
    if EVEN:
        lo = _act_all(X + k, SWIGLU, HALF).to(tl.float32)
        hi = _act_all(X + k + 64, SWIGLU, HALF).to(tl.float32)
    else:
        lo = _act(X + k, xok & (k < K_X), SWIGLU, HALF).to(tl.float32)
        hi = _act(X + k + 64, xok & (k + 64 < K_X), SWIGLU, HALF).to(tl.float32)
    pair = tl.inline_asm_elementwise(_ASM_F16X2, "=r,f,f", [lo, hi], dtype=tl.int32, is_pure=True, pack=1)
    return pair, lo + hi


# A word's 8 products in f16x2, left packed (the quarters of PACKED == 6 are added before unpacking).
_ASM_DOT8_F16_PACKED = tl.constexpr("""{
.reg .b32 nz;
mov.b32 nz, 0x80008000;
fma.rn.f16x2 $0, $1, $5, nz;
fma.rn.f16x2 $0, $2, $6, $0;
fma.rn.f16x2 $0, $3, $7, $0;
fma.rn.f16x2 $0, $4, $8, $0;
}""")
# Two f16x2 sums of the same column added (8 products a half), then the halves added in float32.
_ASM_ADD2_F32 = tl.constexpr("""{
.reg .b32 t;
.reg .b16 hl, hh;
.reg .f32 fl, fh, fs;
add.rn.f16x2 t, $1, $2;
mov.b32 {hl, hh}, t;
cvt.f32.f16 fl, hl;
cvt.f32.f16 fh, hh;
add.f32 fs, fl, fh;
mov.b32 $0, fs;
}""")


@triton.jit
def _quarter_f16(QW, X, b, q: tl.constexpr, N, offs_n, offs_r, wmask, xok, K_X: tl.constexpr,
                 EVEN: tl.constexpr, SWIGLU: tl.constexpr, HALF: tl.constexpr):
    """PACKED == 6: word rows 4 q .. 4 q + 3 of block b -> their products with the activations, a packed f16x2
    word [4, BLOCK_N] each, and the activations' float32 sums [4]."""
    wq = tl.load(QW + (b * 16 + 4 * q + offs_r)[:, None] * N + offs_n[None, :], mask=wmask, other=0)
    c0, c1, c2, c3 = tl.inline_asm_elementwise(_ASM_CODES_F16, "=r,=r,=r,=r,r", [wq], dtype=(tl.int32,) * 4,
                                               is_pure=True, pack=1)
    x0, xs0 = _x_pair_f16(X, b * 128 + 4 * q, xok, K_X, offs_r, EVEN, SWIGLU, HALF)
    x1, xs1 = _x_pair_f16(X, b * 128 + 16 + 4 * q, xok, K_X, offs_r, EVEN, SWIGLU, HALF)
    x2, xs2 = _x_pair_f16(X, b * 128 + 32 + 4 * q, xok, K_X, offs_r, EVEN, SWIGLU, HALF)
    x3, xs3 = _x_pair_f16(X, b * 128 + 48 + 4 * q, xok, K_X, offs_r, EVEN, SWIGLU, HALF)
    t = tl.inline_asm_elementwise(_ASM_DOT8_F16_PACKED, "=r,r,r,r,r,r,r,r,r",
                                  [c0, c1, c2, c3, x0[:, None], x1[:, None], x2[:, None], x3[:, None]],
                                  dtype=tl.int32, is_pure=True, pack=1)
    return t, xs0 + xs1 + xs2 + xs3


# The 8-term sum of an activation pair tensor's halves (x0 + x1 + x2 + x3, two at a time in bf16x2), as float32.
_ASM_XSUM = tl.constexpr("""{
.reg .b32 t, lo, hi, one;
.reg .f32 fl, fh, fs;
mov.b32 one, 0x3F803F80;
fma.rn.bf16x2 t, $1, one, $2;
fma.rn.bf16x2 t, $3, one, t;
fma.rn.bf16x2 t, $4, one, t;
shl.b32 lo, t, 16;
and.b32 hi, t, 0xFFFF0000;
mov.b32 fl, lo;
mov.b32 fh, hi;
add.f32 fs, fl, fh;
mov.b32 $0, fs;
}""")


@triton.jit
def _bf16_bits(x):
    """bf16 tensor -> its 16 bits in the low half of an int32 (no sign extension)."""
    return x.to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF


@triton.jit
def _x_pair(X, k0, xok, K_X: tl.constexpr, offs_i, EVEN: tl.constexpr, SWIGLU: tl.constexpr,
            HALF: tl.constexpr):
    """Activations (x[k0 + i], x[k0 + 64 + i]) of row 0 as bf16x2 words [16], inputs past K_X read as 0;
    also their float32 sum [16]. EVEN: every block of this program is real and unpadded (no masks)."""
    k = k0 + offs_i
    if EVEN:
        lo = _act_all(X + k, SWIGLU, HALF).to(tl.bfloat16)
        hi = _act_all(X + k + 64, SWIGLU, HALF).to(tl.bfloat16)
    else:
        lo = _act(X + k, xok & (k < K_X), SWIGLU, HALF).to(tl.bfloat16)
        hi = _act(X + k + 64, xok & (k + 64 < K_X), SWIGLU, HALF).to(tl.bfloat16)
    pair = _bf16_bits(lo) | (_bf16_bits(hi) << 16)
    return pair, lo.to(tl.float32) + hi.to(tl.float32)


@triton.jit
def _decode_kernel(X, QW, S, Z, BIAS, OUT, Y, CNT, M, N, stride_xm, stride_om, SPLITS: tl.constexpr,
                   K: tl.constexpr, GROUP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   BLOCKS_PER_SPLIT: tl.constexpr, USE_DOT: tl.constexpr, DOT_DTYPE: tl.constexpr,
                   HAS_BIAS: tl.constexpr, PARTIAL: tl.constexpr, PLANES: tl.constexpr,
                   MASKED: tl.constexpr, FUSED_SUM: tl.constexpr, K_X: tl.constexpr,
                   PACKED: tl.constexpr = 0, SWIGLU: tl.constexpr = False, HALF: tl.constexpr = 0,
                   GLU: tl.constexpr = False, ROPE: tl.constexpr = False, COS=None, SIN=None, POS=None, QO=None,
                   KC=None, VC=None, stride_ch=0, HQ=0, HKV=0, HEAD_D: tl.constexpr = 128,
                   PDL: tl.constexpr = False):
    """OUT[m, n] (or float32 partials OUT[split, m, n]) = sum over this program's 128-blocks of
    x[m, k] * (code[k, n] * S[k // GROUP, n] + Z[k // GROUP, n]). PLANES: the 8 nibble planes as a tensor
    axis (one activation load per block, one dot of depth 128) instead of a loop of 8 (one load each).
    MASKED (fma): codes masked in place, no shift per plane (see _masked_codes; with PLANES, planes 0..3 of
    w and of w >> 16, one shift for four planes). FUSED_SUM: the last
    split program of each column tile (an atomic counter per tile, CNT) sums the partials into Y itself,
    so no second kernel is launched; it resets its counter to 0 for the next call. K_X: the activations'
    width; K (the packed rows x 8) may be larger, the weight zero-padded to whole blocks: inputs past K_X
    are read as 0. PACKED (fma, one row, CUDA only): two codes an instruction in inline PTX (1 to 3: bf16x2,
    _ASM_CODES; 4, 5: f16x2, _ASM_CODES_F16), codes centred on 8; a word's products are summed in 16-bit
    floats (4 terms a half), everything across words and blocks in float32. 1 and 4 add the minimum's term once
    per column and block (a reduction over the word rows), 2, 3 and 5 once per word (3: activation sums in bf16x2);
    6 loads the words in quarters of 4 rows and adds two quarters' f16x2 sums before the float32 scale.
    SWIGLU: X's rows are [gate | up] (up HALF = K_X elements after its gate, row stride stride_xm) and every
    activation is silu(gate) * up, made where it is loaded (_act), in every tile. GLU (with FUSED_SUM): the
    weight is a gate and up projection whose columns are interleaved by halves of BLOCK_N (int4.Int4Linear.gated),
    and the last split program writes silu(gate) * up of its BLOCK_N / 2 outputs into Y [M, N / 2] instead of
    the sums. ROPE (with FUSED_SUM, one row): the weight is the fused q, k, v projection with the two halves of
    each head interleaved by BLOCK_N / 2 columns (interleave.interleave_halves), and the last split program rotates
    its q or k half-pairs (COS, SIN: the position's rotary row) and writes them to QO [Hq, HEAD_D] or the key
    cache KC at position POS, or its v values to VC (caches [Hkv, S, HEAD_D], head stride stride_ch), as
    triton_fused.qkv_rotary_cache does after the product. PDL: see pdl.gate."""
    pdl.gate(PDL)
    pid_n = tl.program_id(0)
    split = tl.program_id(1)
    NB: tl.constexpr = K // 128
    EVEN: tl.constexpr = (K_X == K) and (SPLITS * BLOCKS_PER_SPLIT == NB)  # no block masked or padded
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_i = tl.arange(0, 16)
    offs_m = tl.arange(0, BLOCK_M)
    shifts = tl.arange(0, 8) * 4
    offs_k = tl.arange(0, 8)[:, None] * 16 + offs_i[None, :]  # [8, 16]: input 16 j + i of a block
    n_ok = offs_n < N
    m_ok = offs_m < M
    if USE_DOT:
        acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
    else:
        acc = tl.zeros((BLOCK_M, 16, BLOCK_N), tl.float32)
    acc2 = tl.zeros((16, BLOCK_N), tl.float32)  # PACKED (one row): per word row and column
    acc4 = tl.zeros((4, BLOCK_N), tl.float32)  # PACKED == 6: per quarter row and column
    accz = tl.zeros((1, BLOCK_N), tl.float32)  # PACKED 1 and 4: sum(x) * min, per column
    for bi in range(BLOCKS_PER_SPLIT):
        b = split * BLOCKS_PER_SPLIT + bi
        ok = b < NB
        w = tl.load(QW + (b * 16 + offs_i)[:, None] * N + offs_n[None, :], mask=ok & n_ok[None, :], other=0)
        sz = (b * 128 // GROUP) * N + offs_n
        s = tl.load(S + sz, mask=ok & n_ok, other=0.0).to(tl.float32)  # [BLOCK_N]
        z = tl.load(Z + sz, mask=ok & n_ok, other=0.0).to(tl.float32)
        x_ptrs = X + offs_m[:, None] * stride_xm + b * 128 + offs_i[None, :]  # [BLOCK_M, 16], plane 0
        xmask = m_ok[:, None] & ok
        if PACKED == 6:  # four quarters of the word rows: a thread's words of one column share the scale, so
            # quarters 0 + 1 and 2 + 3 are added in f16x2 (8 products a half) before one float32 scale per pair
            z = z + 8.0 * s
            xok = ok & (M > 0)
            offs_r = tl.arange(0, 4)
            wmask = ok & n_ok[None, :]
            t0, xr0 = _quarter_f16(QW, X, b, 0, N, offs_n, offs_r, wmask, xok, K_X, EVEN, SWIGLU, HALF)
            t1, xr1 = _quarter_f16(QW, X, b, 1, N, offs_n, offs_r, wmask, xok, K_X, EVEN, SWIGLU, HALF)
            t2, xr2 = _quarter_f16(QW, X, b, 2, N, offs_n, offs_r, wmask, xok, K_X, EVEN, SWIGLU, HALF)
            t3, xr3 = _quarter_f16(QW, X, b, 3, N, offs_n, offs_r, wmask, xok, K_X, EVEN, SWIGLU, HALF)
            u = (tl.inline_asm_elementwise(_ASM_ADD2_F32, "=r,r,r", [t0, t1], dtype=tl.int32, is_pure=True,
                                           pack=1).to(tl.float32, bitcast=True) +
                 tl.inline_asm_elementwise(_ASM_ADD2_F32, "=r,r,r", [t2, t3], dtype=tl.int32, is_pure=True,
                                           pack=1).to(tl.float32, bitcast=True))  # [4, BLOCK_N], / 64
            acc4 += u * (s * 64.0)[None, :] + (xr0 + xr1 + xr2 + xr3)[:, None] * z[None, :]
        elif PACKED:  # BLOCK_M == 1; 2-D tiles [16, BLOCK_N] in the layout of the words
            z = z + 8.0 * s  # the codes are centred: w = (c - 8) s + (min + 8 s)
            xok = ok & (M > 0)
            if PACKED >= 4:  # f16 codes, scaled by 1/64
                c0, c1, c2, c3 = tl.inline_asm_elementwise(_ASM_CODES_F16, "=r,=r,=r,=r,r", [w],
                                                           dtype=(tl.int32,) * 4, is_pure=True, pack=1)
                x0, xs0 = _x_pair_f16(X, b * 128, xok, K_X, offs_i, EVEN, SWIGLU, HALF)
                x1, xs1 = _x_pair_f16(X, b * 128 + 16, xok, K_X, offs_i, EVEN, SWIGLU, HALF)
                x2, xs2 = _x_pair_f16(X, b * 128 + 32, xok, K_X, offs_i, EVEN, SWIGLU, HALF)
                x3, xs3 = _x_pair_f16(X, b * 128 + 48, xok, K_X, offs_i, EVEN, SWIGLU, HALF)
                t = tl.inline_asm_elementwise(
                    _ASM_DOT8_F16, "=r,r,r,r,r,r,r,r,r",
                    [c0, c1, c2, c3, x0[:, None], x1[:, None], x2[:, None], x3[:, None]],
                    dtype=tl.int32, is_pure=True, pack=1).to(tl.float32, bitcast=True)  # [16, BLOCK_N], / 64
                s = s * 64.0
            else:
                c0, c1, c2, c3 = tl.inline_asm_elementwise(_ASM_CODES, "=r,=r,=r,=r,r", [w], dtype=(tl.int32,) * 4,
                                                           is_pure=True, pack=1)
                x0, xs0 = _x_pair(X, b * 128, xok, K_X, offs_i, EVEN, SWIGLU, HALF)
                x1, xs1 = _x_pair(X, b * 128 + 16, xok, K_X, offs_i, EVEN, SWIGLU, HALF)
                x2, xs2 = _x_pair(X, b * 128 + 32, xok, K_X, offs_i, EVEN, SWIGLU, HALF)
                x3, xs3 = _x_pair(X, b * 128 + 48, xok, K_X, offs_i, EVEN, SWIGLU, HALF)
                t = tl.inline_asm_elementwise(
                    _ASM_DOT8, "=r,r,r,r,r,r,r,r,r", [c0, c1, c2, c3, x0[:, None], x1[:, None], x2[:, None],
                                                      x3[:, None]],
                    dtype=tl.int32, is_pure=True, pack=1).to(tl.float32, bitcast=True)  # [16, BLOCK_N]
            if PACKED == 3:  # the activation sums in bf16x2 too
                xsi = tl.inline_asm_elementwise(_ASM_XSUM, "=r,r,r,r,r", [x0, x1, x2, x3], dtype=tl.int32,
                                                is_pure=True, pack=1).to(tl.float32, bitcast=True)
            else:
                xsi = xs0 + xs1 + xs2 + xs3  # [16]: x summed over the 8 planes, per word row
            if PACKED == 1 or PACKED == 4:  # min term once per column and block (a reduction over the word rows)
                acc2 += t * s[None, :]
                accz += tl.sum(xsi, 0) * z[None, :]
            else:  # min term per word (no cross-thread reduction)
                acc2 += t * s[None, :] + xsi[:, None] * z[None, :]
        elif PLANES:
            bits = ((w[None, :, :] >> shifts[:, None, None]) & 0xF) | 0x4B000000
            c3 = bits.to(tl.float32, bitcast=True) - 8388608.0  # [8, 16, BLOCK_N] codes of inputs 16 j + i
            # (the MASKED branch below does not use c3: the compiler drops it there)
            if USE_DOT:
                kb = b * 128 + tl.arange(0, 128)
                xb = _act(X + offs_m[:, None] * stride_xm + kb[None, :], xmask & (kb < K_X)[None, :], SWIGLU,
                          HALF)  # [BLOCK_M, 128]
                t = tl.dot(xb.to(DOT_DTYPE), tl.reshape(c3, (128, BLOCK_N)).to(DOT_DTYPE))
                acc += t * s[None, :] + tl.sum(xb.to(tl.float32), 1)[:, None] * z[None, :]
            elif MASKED:  # BLOCK_M == 1; planes 0..3 masked in place in w, planes 4..7 in w >> 16
                pl = tl.arange(0, 4)
                magic = (15 << (4 * pl)).to(tl.int32)[:, None, None]  # [4, 1, 1]: 0xF, 0xF0, 0xF00, 0xF000
                inv = (1.0 / (1 << (4 * pl)).to(tl.float32))[:, None]  # [4, 1]: the exact 16^-j
                offs_h = pl[:, None] * 16 + offs_i[None, :]  # [4, 16]: input 16 j + i of a half block
                k_lo = b * 128 + offs_h
                x_lo = _act(X + k_lo, ok & (M > 0) & (k_lo < K_X), SWIGLU, HALF).to(tl.float32)
                x_hi = _act(X + k_lo + 64, ok & (M > 0) & (k_lo + 64 < K_X), SWIGLU, HALF).to(tl.float32)
                c_lo = ((w[None, :, :] & magic) | 0x4B000000).to(tl.float32, bitcast=True) - 8388608.0
                c_hi = (((w >> 16)[None, :, :] & magic) | 0x4B000000).to(tl.float32, bitcast=True) - 8388608.0
                t = tl.sum((x_lo * inv)[:, :, None] * c_lo + (x_hi * inv)[:, :, None] * c_hi, axis=0)  # [16, BN]
                acc += (t * s[None, :] + (tl.sum(x_lo, 0) + tl.sum(x_hi, 0))[:, None] * z[None, :])[None, :, :]
            else:  # BLOCK_M == 1
                x2 = _act(X + b * 128 + offs_k, ok & (M > 0) & (b * 128 + offs_k < K_X), SWIGLU,
                          HALF).to(tl.float32)  # [8, 16]
                t = tl.sum(x2[:, :, None] * c3, axis=0)  # [16, BLOCK_N]
                acc += (t * s[None, :] + tl.sum(x2, 0)[:, None] * z[None, :])[None, :, :]
        elif USE_DOT:
            t = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
            xs = tl.zeros((BLOCK_M,), tl.float32)
            for j in tl.static_range(8):
                xok = xmask & (b * 128 + 16 * j + offs_i < K_X)[None, :]
                xj = _act(x_ptrs + 16 * j, xok, SWIGLU, HALF)
                t += tl.dot(xj.to(DOT_DTYPE), _codes(w, j).to(DOT_DTYPE))
                xs += tl.sum(xj.to(tl.float32), 1)
            acc += t * s[None, :] + xs[:, None] * z[None, :]
        elif MASKED:
            t = tl.zeros((BLOCK_M, 16, BLOCK_N), tl.float32)
            xs = tl.zeros((BLOCK_M, 16), tl.float32)
            w_hi = w >> 20  # nibbles 5, 6, 7 as nibbles 0, 1, 2: one shift for three planes
            for j in tl.static_range(8):
                xok = xmask & (b * 128 + 16 * j + offs_i < K_X)[None, :]
                xj = _act(x_ptrs + 16 * j, xok, SWIGLU, HALF).to(tl.float32)
                xs += xj
                if j < 5:
                    t += (xj * (1.0 / (1 << (4 * j))))[:, :, None] * _masked_codes(w, j)[None, :, :]
                else:
                    t += (xj * (1.0 / (1 << (4 * (j - 5)))))[:, :, None] * _masked_codes(w_hi, j - 5)[None, :, :]
            acc += t * s[None, None, :] + xs[:, :, None] * z[None, None, :]
        else:
            t = tl.zeros((BLOCK_M, 16, BLOCK_N), tl.float32)
            xs = tl.zeros((BLOCK_M, 16), tl.float32)
            for j in tl.static_range(8):
                xok = xmask & (b * 128 + 16 * j + offs_i < K_X)[None, :]
                xj = _act(x_ptrs + 16 * j, xok, SWIGLU, HALF).to(tl.float32)
                t += xj[:, :, None] * _codes(w, j)[None, :, :]
                xs += xj
            acc += t * s[None, None, :] + xs[:, :, None] * z[None, None, :]
    if USE_DOT:
        y = acc
    elif PACKED == 6:
        y = tl.sum(acc4, axis=0)[None, :]
    elif PACKED:
        y = tl.sum(acc2, axis=0)[None, :] + accz
    else:
        y = tl.sum(acc, axis=1)  # [BLOCK_M, BLOCK_N]
    mask = m_ok[:, None] & n_ok[None, :]
    if PARTIAL:
        tl.store(OUT + split * M * N + offs_m[:, None] * N + offs_n[None, :], y, mask=mask)
        if FUSED_SUM:
            tl.debug_barrier()  # every thread's partial is stored before the counter says so
            done = tl.atomic_add(CNT + pid_n, 1, sem="acq_rel")
            if done == SPLITS - 1:  # the last split of this column tile: sum them all
                if GLU:
                    _store_glu(OUT, BIAS, Y, pid_n, offs_m, m_ok, M, N, stride_om, SPLITS, BLOCK_M, BLOCK_N, HAS_BIAS)
                elif ROPE:
                    _store_rope(OUT, BIAS, pid_n, M, N, SPLITS, BLOCK_N, HAS_BIAS, COS, SIN, POS, QO, KC, VC, stride_ch,
                                HQ, HKV, HEAD_D)
                else:
                    tot = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
                    for sp in range(SPLITS):
                        tot += tl.load(OUT + sp * M * N + offs_m[:, None] * N + offs_n[None, :], mask=mask,
                                       other=0.0, cache_modifier=".cg")  # from L2: other programs wrote them
                    if HAS_BIAS:
                        tot += tl.load(BIAS + offs_n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
                    tl.store(Y + offs_m[:, None] * stride_om + offs_n[None, :], tot.to(Y.dtype.element_ty),
                             mask=mask)
                tl.atomic_xchg(CNT + pid_n, 0)  # ready for the next call (graph replays included)
    else:
        if HAS_BIAS:
            y += tl.load(BIAS + offs_n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
        tl.store(OUT + offs_m[:, None] * stride_om + offs_n[None, :], y.to(OUT.dtype.element_ty), mask=mask)


@triton.jit
def _store_rope(OUT, BIAS, pid_n, M, N, SPLITS: tl.constexpr, BLOCK_N: tl.constexpr, HAS_BIAS: tl.constexpr, COS,
                SIN, POS, QO, KC, VC, stride_ch, HQ, HKV, D: tl.constexpr):
    """ROPE epilogue (one row): column tile pid_n holds BLOCK_N / 2 dims of the first half of one head, then the
    same dims of its second half. Their split sums (+ bias) rounded to the output dtype as the projection's
    output is, then rotated (q, k) and stored, as triton_fused's rotary kernel does."""
    HN: tl.constexpr = BLOCK_N // 2
    offs_h = tl.arange(0, HN)
    c1 = pid_n * BLOCK_N + offs_h
    x1 = tl.zeros((HN,), tl.float32)
    x2 = tl.zeros((HN,), tl.float32)
    for sp in range(SPLITS):
        x1 += tl.load(OUT + sp * M * N + c1, cache_modifier=".cg")
        x2 += tl.load(OUT + sp * M * N + c1 + HN, cache_modifier=".cg")
    if HAS_BIAS:
        x1 += tl.load(BIAS + c1).to(tl.float32)
        x2 += tl.load(BIAS + c1 + HN).to(tl.float32)
    x1 = x1.to(QO.dtype.element_ty).to(tl.float32)
    x2 = x2.to(QO.dtype.element_ty).to(tl.float32)
    head = (pid_n * BLOCK_N) // D
    d = ((pid_n * BLOCK_N) % D) // 2 + offs_h  # dims of the first half; the second half's are D / 2 further
    if head < HQ + HKV:
        cos1 = tl.load(COS + d).to(tl.float32)
        cos2 = tl.load(COS + D // 2 + d).to(tl.float32)
        sin1 = tl.load(SIN + d).to(tl.float32)
        sin2 = tl.load(SIN + D // 2 + d).to(tl.float32)
        y1 = x1 * cos1 - x2 * sin1  # rotate-half: [x1, x2] * cos + [-x2, x1] * sin
        y2 = x2 * cos2 + x1 * sin2
        if head < HQ:
            tl.store(QO + head * D + d, y1.to(QO.dtype.element_ty))
            tl.store(QO + head * D + D // 2 + d, y2.to(QO.dtype.element_ty))
        else:
            dst = KC + (head - HQ) * stride_ch + tl.load(POS) * D + d
            tl.store(dst, y1.to(KC.dtype.element_ty))
            tl.store(dst + D // 2, y2.to(KC.dtype.element_ty))
    else:
        dst = VC + (head - HQ - HKV) * stride_ch + tl.load(POS) * D + d
        tl.store(dst, x1.to(VC.dtype.element_ty))
        tl.store(dst + D // 2, x2.to(VC.dtype.element_ty))


@triton.jit
def _store_glu(OUT, BIAS, Y, pid_n, offs_m, m_ok, M, N, stride_om, SPLITS: tl.constexpr, BLOCK_M: tl.constexpr,
               BLOCK_N: tl.constexpr, HAS_BIAS: tl.constexpr):
    """GLU epilogue: column tile pid_n holds BLOCK_N / 2 gate columns, then the up columns of the same outputs;
    their split sums (+ bias) rounded to Y's dtype, then silu(gate) * up into Y [M, N / 2] at the tile's outputs."""
    HN: tl.constexpr = BLOCK_N // 2
    offs_h = tl.arange(0, HN)
    offs_g = pid_n * BLOCK_N + offs_h
    gmask = m_ok[:, None] & (offs_g < N)[None, :]
    gate = tl.zeros((BLOCK_M, HN), tl.float32)
    up = tl.zeros((BLOCK_M, HN), tl.float32)
    for sp in range(SPLITS):
        row = OUT + sp * M * N + offs_m[:, None] * N
        gate += tl.load(row + offs_g[None, :], mask=gmask, other=0.0, cache_modifier=".cg")
        up += tl.load(row + HN + offs_g[None, :], mask=gmask, other=0.0, cache_modifier=".cg")
    if HAS_BIAS:
        gate += tl.load(BIAS + offs_g, mask=offs_g < N, other=0.0).to(tl.float32)[None, :]
        up += tl.load(BIAS + HN + offs_g, mask=offs_g < N, other=0.0).to(tl.float32)[None, :]
    act = _silu_mul_act(gate.to(Y.dtype.element_ty), up.to(Y.dtype.element_ty))
    tl.store(Y + offs_m[:, None] * stride_om + (pid_n * HN + offs_h)[None, :], act, mask=gmask)


@triton.jit
def _sum_splits_kernel(P, BIAS, Y, MN, N, SPLITS: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK: tl.constexpr,
                       PDL: tl.constexpr = False):
    """Y[m, n] = sum_s P[s, m, n] (+ BIAS[n]) in Y's dtype (Y contiguous [M, N])."""
    pdl.gate(PDL)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < MN
    y = tl.zeros((BLOCK,), tl.float32)
    for s in tl.static_range(SPLITS):
        y += tl.load(P + s * MN + offs, mask=ok, other=0.0)
    if HAS_BIAS:
        y += tl.load(BIAS + offs % N, mask=ok, other=0.0).to(tl.float32)
    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=ok)


@triton.jit
def _dequant_kernel(QW, S, Z, WT, N, K: tl.constexpr, GROUP: tl.constexpr, BLOCK_N: tl.constexpr):
    """WT[k, n] = code * scale + min in WT's dtype ([K, N], the transposed weight), one 128-block per program
    row: the stores are as coalesced as the loads."""
    b = tl.program_id(1)
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_i = tl.arange(0, 16)
    n_ok = offs_n < N
    w = tl.load(QW + (b * 16 + offs_i)[:, None] * N + offs_n[None, :], mask=n_ok[None, :], other=0)
    sz = (b * 128 // GROUP) * N + offs_n
    s = tl.load(S + sz, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    z = tl.load(Z + sz, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    out = WT + (b * 128 + offs_i)[:, None] * N + offs_n[None, :]
    for j in tl.static_range(8):
        tl.store(out + 16 * j * N, (_codes(w, j) * s + z).to(WT.dtype.element_ty), mask=n_ok[None, :])


@dataclass(frozen=True)
class DecodeConfig:
    """Tile of the decode kernel: ``use_dot`` picks the tensor-core variant (activations padded to 16 rows);
    ``blocks_per_split`` 128-input blocks per program along K (0: pick to fill the GPU)."""

    use_dot: bool
    block_n: int
    blocks_per_split: int = 0
    num_warps: int = 4
    num_stages: int = 3
    planes: bool = False
    masked: bool = False  # fma only: codes masked in place, no shift per plane (3 instructions a weight, not 4)
    fused_sum: bool = False  # split partials summed by the last program of each tile (one launch, not two)
    # fma, one row, CUDA only: two codes an instruction (inline PTX; more rows or no CUDA: the portable
    # tile, see _portable). 0: off; bf16x2 products: 1: the min term summed once per column and block; 2: per
    # word (float32 activation sums); 3: as 2, sums in bf16x2; f16x2 products: 4: as 1; 5: as 2; 6: the words
    # loaded in quarters of 4 rows, two quarters' products added in f16x2 before the float32 scale
    packed: int = 0


_D = DecodeConfig
# Tiles measured fastest per (rows, N, K) by benchmarks/gpu/int4_bench.py --sweep on an H200 (2026-12-03; one row:
# the packed-codes run of docs/benchmarks/gpu_int4.md, in brackets the planes fma tile of that run) for
# the 7.6B shape's matrices (fused wqkv, wo, w13, w2; separate k/v and gate/up); the bench refreshes the table
# in its own run. Any tile is correct on any GPU; these are only the fastest measured there.
TUNED: dict[tuple[int, int, int], DecodeConfig] = {
    (1, 4608, 3584): _D(False, 64, 2, fused_sum=True, packed=5),  # wqkv 7.5 us (planes fma tile: 9.8)
    (4, 4608, 3584): _D(True, 128, 0, 8, fused_sum=True),  # 14.1 us
    (8, 4608, 3584): _D(True, 128, 0, 8, fused_sum=True),  # 14.4 us
    (1, 3584, 3584): _D(False, 64, 2, fused_sum=True, packed=5),  # wo (and q, o) 6.8 us (8.3)
    (4, 3584, 3584): _D(True, 128, 0, 8, fused_sum=True),  # 12.0 us
    (8, 3584, 3584): _D(True, 128, 0, 8, fused_sum=True),  # 12.4 us
    (1, 37888, 3584): _D(False, 64, 4, 2, fused_sum=True, packed=4),  # w13 32.8 us (49.8)
    (4, 37888, 3584): _D(True, 128, 1),  # 65.0 us
    (8, 37888, 3584): _D(True, 128, 1),  # 71.8 us
    (1, 3584, 18944): _D(False, 64, 2, fused_sum=True, packed=5),  # w2 (down) 17.8 us (26.1)
    (4, 3584, 18944): _D(True, 128, 0, 8, fused_sum=True),  # 43.1 us
    (8, 3584, 18944): _D(True, 128, 0, 8),  # 44.1 us
    (1, 512, 3584): _D(False, 64, 1, planes=True, masked=True, fused_sum=True),  # k, v 4.3 us
    (4, 512, 3584): _D(True, 64, 0, planes=True),  # 8.1 us
    (8, 512, 3584): _D(True, 128, 1, 8, planes=True),  # 8.1 us
    (1, 18944, 3584): _D(False, 64, 8, 2, fused_sum=True, packed=5),  # gate, up 19.0 us (27.2)
    (4, 18944, 3584): _D(True, 128, 1),  # 36.2 us
    (8, 18944, 3584): _D(True, 128, 1),  # 38.8 us
    # the output head (vocabulary 152064 x 3584), int4 only with quantize_linears_int4(head=True): 2376 column
    # tiles fill the GPU already, so 2 splits of 14 blocks (2026-12-04 sweep: 100 us against bf16's 286, bound 68)
    (1, 152064, 3584): _D(False, 64, 14, 2, fused_sum=True, packed=4),
}
# w2 taking w13's output [gate | up] (swiglu=True): each program makes silu(gate) * up for its own blocks (every
# column tile again). Swept by int4_bench.py --sweep-matrices w2+swiglu (2026-12-04): 26.4 us at best (planes
# tile; w2's own packed tile 27.4) against 17.8 for w2 alone, more than the silu_mul kernel it saves; so empty
# here (w2's tile) and fuse_swiglu stays off by default
TUNED_SWIGLU: dict[tuple[int, int, int], DecodeConfig] = {}


@functools.lru_cache(maxsize=None)
def _packed_supported(device_type: str, index: int | None) -> bool:
    if INTERPRETED or getattr(torch.version, "hip", None) or device_type != "cuda" or not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability(index)[0] >= 8


def packed_supported(device: torch.device | str) -> bool:
    """Whether the PACKED tiles can run on ``device``: inline PTX with fma.rn.bf16x2 needs an NVIDIA GPU of
    compute capability 8.0 or later; never in Triton's CPU interpreter (no inline assembly) nor on ROCm."""
    device = torch.device(device)
    return _packed_supported(device.type, device.index)


def _portable(cfg: DecodeConfig, m: int) -> DecodeConfig:
    """``cfg`` without inline PTX: the planes fma tile at one row, the tensor-core tile above."""
    if m == 1:
        return dataclasses.replace(cfg, packed=0, use_dot=False, planes=True, masked=False)
    return DecodeConfig(True, cfg.block_n, 0, 8, fused_sum=cfg.fused_sum)


def decode_config(m: int, n: int, k: int, device: torch.device | str | None = None,
                  swiglu: bool = False) -> DecodeConfig:
    """The tile for ``m`` activation rows and an [n, k] weight: a swept one if known, else the tiles that won
    most often in the sweep (one row: two codes an instruction where inline PTX runs, else fma with the
    planes as an axis; more: the tensor-core tile). ``device``: where it runs (None: a CUDA GPU); a PACKED
    tile is replaced by its portable twin where inline PTX does not exist. ``swiglu``: the tile swept for
    activations made from [gate | up] (TUNED_SWIGLU) if there is one, else the plain product's."""
    supported = packed_supported(device if device is not None else "cuda")
    cfg = (TUNED_SWIGLU.get((m, n, k)) if swiglu else None) or TUNED.get((m, n, k))
    if cfg is None:
        cfg = (DecodeConfig(False, 64, 2, fused_sum=True, packed=5) if m == 1 else
               DecodeConfig(True, 128, 0, 8, fused_sum=True))
    return cfg if supported or not cfg.packed else _portable(cfg, m)


def _blocks_per_split(cfg: DecodeConfig, n: int, k: int, programs: int = 528) -> int:
    """128-blocks per program: enough programs (about 4 per SM of an H200) for the GPU to stream at full rate."""
    blocks = k // BLOCK
    if cfg.blocks_per_split:
        return max(cfg.blocks_per_split, triton.cdiv(blocks, 64))  # at most 64 float32 partials per output
    columns = triton.cdiv(n, cfg.block_n)
    splits = max(1, min(blocks, programs // columns))
    return triton.cdiv(blocks, splits)


_COUNTERS: dict[torch.device, torch.Tensor] = {}


def _shared_counters(device: torch.device, tiles: int) -> torch.Tensor | None:
    """Zeroed int32 counters for FUSED_SUM calls that bring none of their own (every call leaves them at 0
    again). Made outside a graph capture only: a buffer first zeroed inside a capture would be garbage
    until the graph's first replay; None then (the two-kernel sum is used)."""
    have = _COUNTERS.get(device)
    if have is not None and have.numel() >= tiles:
        return have
    if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
        return None
    _COUNTERS[device] = torch.zeros(max(tiles, 4096), dtype=torch.int32, device=device)
    return _COUNTERS[device]


def int4_decode(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, mins: torch.Tensor,
                group: int, bias: torch.Tensor | None = None, config: DecodeConfig | None = None,
                counters: torch.Tensor | None = None, swiglu: bool = False, glu_chunk: int = 0,
                rope: "RopeTarget | None" = None) -> torch.Tensor:
    """x [M, K] (M <= 16, last dim contiguous) -> x @ W.T [M, N] in x's dtype, W never materialised.
    ``counters``: zeroed int32 [>= N / block_n] for the fused split sum, owned by the caller (Int4Linear);
    without them a shared buffer is used. Calls sharing counters must not run concurrently (one stream).
    ``swiglu``: x is [M, 2K], the fused gate and up projection's output (gate then up), and the product is
    silu(gate) * up @ W.T: the kernel makes each activation as it loads it (no silu_mul kernel, no [M, K]
    intermediate), rounded as the torch reference rounds it. ``glu_chunk``: W is a gate and up projection whose
    rows are interleaved in chunks of glu_chunk (interleave.interleave_gate_up) and the result is silu(gate) * up
    [M, N / 2], made by the last program of each column tile of 2 glu_chunk columns as it sums the splits; where
    that tile cannot sum its own splits (one split, no counters) the product is made whole first.
    ``rope``: W is the fused q, k, v projection with each head's halves interleaved in chunks of rope.chunk, and
    the result is written as triton_fused.qkv_rotary_cache writes it (q rotated into rope.q, k rotated and v into
    the bf16 cache at rope.pos) by the last program of each column tile; returns rope.q. One row; where the tile
    cannot, the product is made whole, its columns put back, and the rotary kernel runs."""
    M, K_x = x.shape
    if swiglu:
        if K_x % 2:
            raise ValueError(f"swiglu needs [gate | up] rows of even width, got {K_x}")
        K_x //= 2
    K, N = qweight.shape[0] * 8, qweight.shape[1]  # K >= K_x: the weight may be zero-padded to whole blocks
    if K_x > K:
        raise ValueError(f"activations have {K_x} columns, the int4 weight only {K}")
    cfg = config or decode_config(M, N, K, x.device, swiglu)
    if cfg.packed and (cfg.use_dot or M > 1 or not packed_supported(x.device)):  # one row, CUDA only
        cfg = _portable(cfg, M)
    if glu_chunk:
        if N % (2 * glu_chunk) or glu_chunk & (glu_chunk - 1):
            raise ValueError(f"glu_chunk must be a power of two and N a multiple of twice it; got {glu_chunk}, {N}")
        cfg = dataclasses.replace(cfg, block_n=2 * glu_chunk, fused_sum=True)
    if rope is not None:
        cfg = dataclasses.replace(cfg, block_n=2 * rope.chunk, fused_sum=True)
    if x.stride(-1) != 1:
        x = x.contiguous()
    block_m = 16 if cfg.use_dot else max(1, triton.next_power_of_2(M))
    if M > 16 or (cfg.planes and not cfg.packed and not cfg.use_dot and M > 1):
        raise ValueError(f"this int4 decode tile takes at most {1 if cfg.planes and not cfg.use_dot else 16} rows, "
                         f"got {M}")
    bps = _blocks_per_split(cfg, N, K)
    splits = triton.cdiv(K // BLOCK, bps)
    partial = splits > 1
    tiles = triton.cdiv(N, cfg.block_n)
    cnt = None
    if partial and cfg.fused_sum:
        cnt = counters if counters is not None and counters.numel() >= tiles else _shared_counters(x.device, tiles)
    fused = cnt is not None
    D = rope.keys.shape[-1] if rope is not None else 0
    if rope is not None and not (fused and M == 1 and D % cfg.block_n == 0 and rope.keys.dtype == x.dtype and
                                 rope.keys.is_contiguous() and rope.values.is_contiguous() and rope.q.is_contiguous()):
        from .interleave import deinterleave_halves
        from .triton_fused import qkv_rotary_cache  # the whole product, its columns back in order, then rotary
        y = deinterleave_halves(int4_decode(x, qweight, scales, mins, group, bias, config=cfg), rope.chunk, D)
        qkv_rotary_cache(y.view(1, 1, N), rope.cos, rope.sin, rope.pos, rope.keys, rope.values, rope.n_heads,
                         rope.n_kv_heads, out=rope.q)
        return rope.q
    if glu_chunk and not fused:  # the whole product, then SwiGLU on its columns in [gate | up] order
        from .interleave import deinterleave_gate_up
        from .stages import silu_mul
        return silu_mul(deinterleave_gate_up(int4_decode(x, qweight, scales, mins, group, bias, config=cfg),
                                             glu_chunk))
    y = torch.empty(M, N // 2 if glu_chunk else N, device=x.device, dtype=x.dtype)
    out = torch.empty(splits, M, N, device=x.device, dtype=torch.float32) if partial else y
    b = bias if bias is not None else y
    on = pdl.enabled(x.device)
    _decode_kernel[(tiles, splits)](
        x, qweight, scales, mins, b, out, y, cnt if fused else y, M, N, x.stride(0), y.stride(0), SPLITS=splits, K=K,
        GROUP=group,
        BLOCK_M=block_m, BLOCK_N=cfg.block_n, BLOCKS_PER_SPLIT=bps, USE_DOT=cfg.use_dot,
        # the interpreter's tl.dot gets converted bf16 operands wrong: float32 there
        DOT_DTYPE=tl.float32 if INTERPRETED else tl.bfloat16, HAS_BIAS=bias is not None, PARTIAL=partial,
        PLANES=cfg.planes and not cfg.packed, MASKED=cfg.masked and not cfg.use_dot and not cfg.packed,
        FUSED_SUM=fused, K_X=K_x, PACKED=int(cfg.packed), SWIGLU=swiglu, HALF=K_x if swiglu else 0,
        GLU=bool(glu_chunk), ROPE=rope is not None, **(_rope_args(rope) if rope is not None else {}),
        num_warps=cfg.num_warps, num_stages=cfg.num_stages, PDL=on, **pdl.launch(on))
    if partial and not fused:
        block = 1024
        _sum_splits_kernel[(triton.cdiv(M * N, block),)](out, b, y, M * N, N, SPLITS=splits,
                                                         HAS_BIAS=bias is not None, BLOCK=block, num_warps=4,
                                                         PDL=on, **pdl.launch(on))
    return rope.q if rope is not None else y


class RopeTarget(NamedTuple):
    """Where int4_decode(rope=...) writes a decoding step's q, k and v (see qkv_rotary_cache): cos and sin [1, D]
    (the position's rotary rows), pos (a one-element device tensor), q [1, 1, Hq, D], one layer's keys and
    values [1, Hkv, S, D] (batch 1), the head counts and the interleaving chunk of the weight's columns."""

    cos: torch.Tensor
    sin: torch.Tensor
    pos: torch.Tensor
    q: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor
    n_heads: int
    n_kv_heads: int
    chunk: int


def _rope_args(rope: RopeTarget) -> dict:
    return dict(COS=rope.cos.contiguous(), SIN=rope.sin.contiguous(), POS=rope.pos, QO=rope.q, KC=rope.keys,
                VC=rope.values, stride_ch=rope.keys.stride(-3), HQ=rope.n_heads, HKV=rope.n_kv_heads,
                HEAD_D=rope.keys.shape[-1])


def int4_dequantize_t(qweight: torch.Tensor, scales: torch.Tensor, mins: torch.Tensor, group: int,
                      dtype: torch.dtype = torch.bfloat16, block_n: int = 256) -> torch.Tensor:
    """The transposed weight W.T [K, N] in ``dtype`` (one transient matrix, for prefill)."""
    K, N = qweight.shape[0] * 8, qweight.shape[1]
    wt = torch.empty(K, N, device=qweight.device, dtype=dtype)
    _dequant_kernel[(triton.cdiv(N, block_n), K // BLOCK)](qweight, scales, mins, wt, N, K=K, GROUP=group,
                                                           BLOCK_N=block_n, num_warps=4)
    return wt


def int4_prefill(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, mins: torch.Tensor, group: int,
                 bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [M, K] -> [M, N]: the weight dequantised into a bf16 temporary (one matrix, freed after), then
    cuBLAS. At prefill sizes the dequantisation (read 0.5, write 2 bytes a weight) is a few % of the product."""
    wt = int4_dequantize_t(qweight, scales, mins, group, x.dtype)[:x.shape[1]]  # the padded rows unused
    return torch.addmm(bias, x, wt) if bias is not None else x @ wt

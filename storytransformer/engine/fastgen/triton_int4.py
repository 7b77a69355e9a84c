"""4-bit weight-only matrix products in Triton: a fused dequantise-and-multiply kernel for decoding
(1 to 8 activation rows) and a dequantise kernel that feeds torch.matmul for prefill.

Why this layout. Decoding reads every weight once per step, so the time is the bytes read; the
kernel must stream the packed weights at full bandwidth and never write bf16 weights anywhere.

  qweight [N, K // 8] int32   eight 4-bit codes per word, rows (output features) contiguous along K.
                              Inside each block of 128 inputs the codes are stored *planar*: word i
                              (0..15) of the block holds, in nibble j (0..7), the code of input
                              k = block * 128 + j * 16 + i. A tile of words is then read with 16-byte
                              coalesced loads, and nibble plane j of the tile is one shift-and-mask
                              away, matching a contiguous run of 16 activations: no reshapes, no
                              shuffles inside the kernel. The packing is done once, at quantisation.
  scales, mins [N, K // group] bf16   per output row and group of ``group`` inputs (a multiple of 128):
                              w = code * scale + min (asymmetric). The offset costs nothing in the
                              decode kernel (min * sum(x) once per word, not per weight) and uses all
                              16 levels on groups that are not centred on zero; it adds 2 bytes per
                              group (1.6 % of the weight bytes at group 128).

A code becomes a float without a conversion instruction: (code | 0x4B000000) read as float32 is
2^23 + code exactly, one subtraction away. Per weight the decode kernel then costs a shift, a
mask-or, a subtraction and one multiply-add per activation row ("fma" mode), or the dequantised bf16
tile goes to the tensor cores ("dot" mode, activations padded to 16 rows), which stays cheap when
there are 4 or 8 rows. Both launch a fixed grid with no host synchronisation: graph-safe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

BLOCK = 128  # inputs per planar block: 16 words x 8 nibbles
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"  # Triton's CPU interpreter (tests)


@triton.jit
def _codes(w, j: tl.constexpr):
    """Nibble plane j of packed words -> float32 codes 0..15 (exact)."""
    bits = ((w >> (4 * j)) & 0xF) | 0x4B000000
    return bits.to(tl.float32, bitcast=True) - 8388608.0


@triton.jit
def _decode_kernel(X, QW, S, Z, BIAS, Y, M, N, stride_xm, stride_ym, K: tl.constexpr,
                   GROUP: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                   USE_DOT: tl.constexpr, HAS_BIAS: tl.constexpr, DOT_DTYPE: tl.constexpr):
    """Y[m, n] = sum_k X[m, k] * (code[n, k] * S[n, k // GROUP] + Z[n, k // GROUP]) (+ BIAS[n]).
    One program: BLOCK_N output features over the whole of K, so no split-K reduction is needed."""
    pid = tl.program_id(0)
    C: tl.constexpr = BLOCK_K // 8  # words per row in one tile
    offs_n = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_c = tl.arange(0, C)
    offs_m = tl.arange(0, BLOCK_M)
    n_ok = offs_n < N
    m_ok = offs_m < M
    kw = K // 8
    n_groups = K // GROUP
    k_rel = (offs_c // 16) * 128 + (offs_c % 16)  # input of nibble plane 0 of each word, from the tile start
    if USE_DOT:
        acc = tl.zeros((BLOCK_N, BLOCK_M), tl.float32)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N, C), tl.float32)
    for k0 in range(0, K, BLOCK_K):
        c_ok = (k0 // 8 + offs_c) < kw
        wmask = n_ok[:, None] & c_ok[None, :]
        w = tl.load(QW + offs_n[:, None] * kw + (k0 // 8 + offs_c)[None, :], mask=wmask, other=0)
        g = (k0 + k_rel) // GROUP
        sz = offs_n[:, None] * n_groups + g[None, :]
        s = tl.load(S + sz, mask=wmask, other=0.0).to(tl.float32)
        z = tl.load(Z + sz, mask=wmask, other=0.0).to(tl.float32)
        xmask = m_ok[:, None] & c_ok[None, :]
        x_ptrs = X + offs_m[:, None] * stride_xm + (k0 + k_rel)[None, :]
        if USE_DOT:
            for j in tl.static_range(8):
                wv = (_codes(w, j) * s + z).to(DOT_DTYPE)  # [BLOCK_N, C]
                xj = tl.load(x_ptrs + 16 * j, mask=xmask, other=0.0).to(DOT_DTYPE)  # [BLOCK_M, C]
                acc += tl.dot(wv, tl.trans(xj))
        else:
            t = tl.zeros((BLOCK_M, BLOCK_N, C), tl.float32)
            xs = tl.zeros((BLOCK_M, C), tl.float32)
            for j in tl.static_range(8):
                xj = tl.load(x_ptrs + 16 * j, mask=xmask, other=0.0).to(tl.float32)  # [BLOCK_M, C]
                t += xj[:, None, :] * _codes(w, j)[None, :, :]
                xs += xj
            # sum over the word's 8 inputs of x * (code * s + z) = s * sum(x * code) + z * sum(x)
            acc += t * s[None, :, :] + xs[:, None, :] * z[None, :, :]
    if USE_DOT:
        y = tl.trans(acc)  # [BLOCK_M, BLOCK_N]
    else:
        y = tl.sum(acc, axis=2)
    if HAS_BIAS:
        y += tl.load(BIAS + offs_n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    tl.store(Y + offs_m[:, None] * stride_ym + offs_n[None, :], y.to(Y.dtype.element_ty),
             mask=m_ok[:, None] & n_ok[None, :])


@triton.jit
def _dequant_kernel(QW, S, Z, W, N, K, GROUP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """W[n, k] = code * scale + min in W's dtype, for the prefill's torch.matmul."""
    C: tl.constexpr = BLOCK_K // 8
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    k0 = tl.program_id(1) * BLOCK_K
    offs_c = tl.arange(0, C)
    kw = K // 8
    c_ok = (k0 // 8 + offs_c) < kw
    mask = (offs_n < N)[:, None] & c_ok[None, :]
    w = tl.load(QW + offs_n[:, None] * kw + (k0 // 8 + offs_c)[None, :], mask=mask, other=0)
    k_rel = (offs_c // 16) * 128 + (offs_c % 16)
    sz = offs_n[:, None] * (K // GROUP) + ((k0 + k_rel) // GROUP)[None, :]
    s = tl.load(S + sz, mask=mask, other=0.0).to(tl.float32)
    z = tl.load(Z + sz, mask=mask, other=0.0).to(tl.float32)
    out = W + offs_n[:, None] * K + (k0 + k_rel)[None, :]
    for j in tl.static_range(8):
        tl.store(out + 16 * j, (_codes(w, j) * s + z).to(W.dtype.element_ty), mask=mask)


@dataclass(frozen=True)
class DecodeConfig:
    """Tile of the decode kernel: ``use_dot`` picks the tensor-core variant (activations padded to 16)."""

    use_dot: bool
    block_n: int
    block_k: int
    num_warps: int
    num_stages: int = 3


def decode_config(m: int, n: int, k: int) -> DecodeConfig:
    """The tile for ``m`` activation rows and an [n, k] weight. Picked from benchmarks/gpu/int4_bench.py's
    sweep on the H200; small blocks of output features keep enough programs for 132 SMs without split-K."""
    block_k = 512 if k % 512 == 0 else 256 if k % 256 == 0 else 128
    if m <= 2:
        return DecodeConfig(False, 4, block_k, 4)
    return DecodeConfig(True, 16, block_k, 4)


def int4_decode(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, mins: torch.Tensor,
                group: int, bias: torch.Tensor | None = None, config: DecodeConfig | None = None) -> torch.Tensor:
    """x [M, K] (M <= 16, last dim contiguous) -> x @ W.T [M, N] in x's dtype, W never materialised."""
    M, K = x.shape
    N = qweight.shape[0]
    cfg = config or decode_config(M, N, K)
    if x.stride(-1) != 1:
        x = x.contiguous()
    block_m = 16 if cfg.use_dot else max(1, triton.next_power_of_2(M))
    if M > block_m or (cfg.use_dot and M > 16):
        raise ValueError(f"int4 decode kernel takes at most {block_m} rows, got {M}")
    y = torch.empty(M, N, device=x.device, dtype=x.dtype)
    grid = (triton.cdiv(N, cfg.block_n),)
    _decode_kernel[grid](x, qweight, scales, mins, bias if bias is not None else y, y, M, N, x.stride(0),
                         y.stride(0), K=K, GROUP=group, BLOCK_M=block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k,
                         USE_DOT=cfg.use_dot, HAS_BIAS=bias is not None,
                         # the interpreter's tl.dot gets converted bf16 operands wrong: float32 there
                         DOT_DTYPE=tl.float32 if INTERPRETED else tl.bfloat16, num_warps=cfg.num_warps,
                         num_stages=cfg.num_stages)
    return y


def int4_dequantize(qweight: torch.Tensor, scales: torch.Tensor, mins: torch.Tensor, group: int,
                    dtype: torch.dtype = torch.bfloat16, block_n: int = 32, block_k: int = 512) -> torch.Tensor:
    """The [N, K] weight in ``dtype`` (one transient matrix, for prefill)."""
    N, K = qweight.shape[0], qweight.shape[1] * 8
    block_k = min(block_k, K)
    w = torch.empty(N, K, device=qweight.device, dtype=dtype)
    _dequant_kernel[(triton.cdiv(N, block_n), triton.cdiv(K, block_k))](qweight, scales, mins, w, N, K, GROUP=group,
                                                                        BLOCK_N=block_n, BLOCK_K=block_k,
                                                                        num_warps=4)
    return w


def int4_prefill(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, mins: torch.Tensor, group: int,
                 bias: torch.Tensor | None = None) -> torch.Tensor:
    """x [M, K] -> [M, N]: the weight dequantised into a bf16 temporary (one matrix, freed after), then
    cuBLAS. At prefill sizes the dequantisation (read 0.5, write 2 bytes a weight) is a few % of the product."""
    return torch.nn.functional.linear(x, int4_dequantize(qweight, scales, mins, group, x.dtype), bias)

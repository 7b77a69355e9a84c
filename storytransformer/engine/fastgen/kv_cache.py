"""A static, pre-allocated KV cache: fixed capacity, written in place, so that decoding has fixed
shapes (a CUDA graph can replay it) and a prefilled prefix can stay resident and be reused.

Keys and values are stored in the model's dtype (bf16) or, with ``kv_dtype=torch.float8_e4m3fn``, in
8-bit e4m3 with one float32 scale per position and key/value head (a block of head_dim values): half
the bytes of a bf16 cache plus 1/32 for the scales, so a 24 GB card holds twice the context. A scale
per position needs no calibration and is written with its position, so decoding one token at a time
quantises exactly as a long prefill does. The attention kernels read the 8-bit values and their
scales directly; nothing is dequantised into a second copy.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .config import ModelConfig

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0  # the largest finite e4m3 value
KV_DTYPES = {"bf16": None, "fp8": FP8}  # engine/benchmark names -> storage dtype (None: the model's dtype)


class KVLayer(NamedTuple):
    """One layer's keys and values [B, Hkv, S, D], and for an 8-bit cache their scales [B, Hkv, S]."""

    k: torch.Tensor
    v: torch.Tensor
    k_scale: torch.Tensor | None = None
    v_scale: torch.Tensor | None = None

    @property
    def quantized(self) -> bool:
        return self.k_scale is not None

    def rows(self, b: int) -> "KVLayer":
        """Batch row ``b`` only (still 4-d)."""
        return KVLayer(*(None if t is None else t[b:b + 1] for t in self))

    def upto(self, end: int) -> "KVLayer":
        """The first ``end`` positions."""
        return KVLayer(self.k[:, :, :end], self.v[:, :, :end],
                       *(None if s is None else s[:, :, :end] for s in (self.k_scale, self.v_scale)))

    def dequantized(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(k, v) in ``dtype``: the plain-torch reference for the kernels that read 8-bit values."""
        if not self.quantized:
            return self.k.to(dtype), self.v.to(dtype)
        return ((self.k.float() * self.k_scale[..., None]).to(dtype),
                (self.v.float() * self.v_scale[..., None]).to(dtype))


class StaticKVCache:
    """Keys and values [layers, B, Hkv, S, D], rotary tables [S, D], and ``length``, the number of
    positions filled. Truncating (``length = n``) keeps a prefix of n positions for reuse: later
    writes overwrite what followed it, and attention never reads past the filled length."""

    def __init__(self, cfg: ModelConfig, max_seq_len: int, batch: int = 1, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.bfloat16, kv_dtype: torch.dtype | None = None):
        self.cfg, self.max_seq_len, self.batch = cfg, max_seq_len, batch
        self.kv_dtype = kv_dtype or dtype
        if self.kv_dtype not in (dtype, FP8):
            raise ValueError(f"a KV cache stores {dtype} or {FP8}, not {self.kv_dtype}")
        shape = (cfg.n_layers, batch, cfg.n_kv_heads, max_seq_len, cfg.head_dim)
        # Zeroed, not empty: masked-out positions still meet a zero probability, and 0 * NaN would be NaN.
        self.k = torch.zeros(shape, device=device, dtype=self.kv_dtype)
        self.v = torch.zeros(shape, device=device, dtype=self.kv_dtype)
        self.k_scale = self.v_scale = None
        if self.quantized:
            self.k_scale = torch.zeros(shape[:-1], device=device, dtype=torch.float32)
            self.v_scale = torch.zeros(shape[:-1], device=device, dtype=torch.float32)
        self.cos, self.sin = rotary_table(cfg, max_seq_len, device, dtype)  # [S, D]
        self.positions = torch.arange(max_seq_len, device=device)  # [S], for graph-safe length masks
        self.length = 0

    @property
    def quantized(self) -> bool:
        return self.kv_dtype == FP8

    def layer(self, i: int) -> KVLayer:
        if self.quantized:
            return KVLayer(self.k[i], self.v[i], self.k_scale[i], self.v_scale[i])
        return KVLayer(self.k[i], self.v[i])

    @property
    def nbytes(self) -> int:
        scales = self.k_scale.nbytes + self.v_scale.nbytes if self.quantized else 0
        return self.k.nbytes + self.v.nbytes + scales

    @staticmethod
    def bytes_per_token(cfg: ModelConfig, dtype_bytes: int = 2, fp8: bool = False) -> int:
        """Cache bytes of one position over all layers (keys, values and, for 8-bit, their scales)."""
        per_head = cfg.head_dim * (1 if fp8 else dtype_bytes) + (4 if fp8 else 0)
        return 2 * cfg.n_layers * cfg.n_kv_heads * per_head


def quantize_fp8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [..., D] -> (e4m3 values [..., D], float32 scales [...]) with x ~= values * scale: one scale per
    vector, its largest magnitude mapped to the largest e4m3 value."""
    x32 = x.float()
    scale = (x32.abs().amax(dim=-1) / FP8_MAX).clamp_min(1e-12)
    return (x32 / scale[..., None]).clamp_(-FP8_MAX, FP8_MAX).to(FP8), scale


def rotary_table(cfg: ModelConfig, positions: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [positions, D] for rotate-half rotary embeddings (angles computed in float32)."""
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, device=device, dtype=torch.float32)
                                         / cfg.head_dim))
    angles = torch.outer(torch.arange(positions, device=device, dtype=torch.float32), inv_freq)  # [P, D/2]
    angles = torch.cat((angles, angles), dim=-1)  # [P, D]
    return angles.cos().to(dtype), angles.sin().to(dtype)

"""A static, pre-allocated KV cache: fixed capacity, written in place, so that decoding has fixed
shapes (a CUDA graph can replay it) and a prefilled prefix can stay resident and be reused."""

from __future__ import annotations

import torch

from .config import ModelConfig


class StaticKVCache:
    """Keys and values [layers, B, Hkv, S, D], rotary tables [S, D], and ``length``, the number of
    positions filled. Truncating (``length = n``) keeps a prefix of n positions for reuse: later
    writes overwrite what followed it, and attention never reads past the filled length."""

    def __init__(self, cfg: ModelConfig, max_seq_len: int, batch: int = 1, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.bfloat16):
        self.cfg, self.max_seq_len, self.batch = cfg, max_seq_len, batch
        shape = (cfg.n_layers, batch, cfg.n_kv_heads, max_seq_len, cfg.head_dim)
        # Zeroed, not empty: masked-out positions still meet a zero probability, and 0 * NaN would be NaN.
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.cos, self.sin = rotary_table(cfg, max_seq_len, device, dtype)  # [S, D]
        self.positions = torch.arange(max_seq_len, device=device)  # [S], for graph-safe length masks
        self.length = 0

    @property
    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes


def rotary_table(cfg: ModelConfig, positions: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin [positions, D] for rotate-half rotary embeddings (angles computed in float32)."""
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, device=device, dtype=torch.float32)
                                         / cfg.head_dim))
    angles = torch.outer(torch.arange(positions, device=device, dtype=torch.float32), inv_freq)  # [P, D/2]
    angles = torch.cat((angles, angles), dim=-1)  # [P, D]
    return angles.cos().to(dtype), angles.sin().to(dtype)

"""The decoder's shape, without torch: the benchmark's cost formulas and the CLI read it too."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """A Qwen2-style decoder: RMSNorm, rotary positions, grouped-query attention with qkv bias, SwiGLU."""

    n_layers: int = 28
    dim: int = 3584
    intermediate: int = 18944
    n_heads: int = 28
    n_kv_heads: int = 4
    head_dim: int = 128
    vocab: int = 152064
    rope_theta: float = 10_000_000.0
    norm_eps: float = 1e-5
    qkv_bias: bool = True
    name: str = "qwen2.5-7b-instruct-1m-shape"

    def __post_init__(self) -> None:
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")
        if self.head_dim % 2:
            raise ValueError(f"head_dim ({self.head_dim}) must be even for rotary embeddings")

    @property
    def group(self) -> int:
        """Query heads sharing one key/value head."""
        return self.n_heads // self.n_kv_heads

    @classmethod
    def qwen25_7b_1m(cls) -> "ModelConfig":
        """The shape of Qwen2.5-7B-Instruct-1M (7.6B parameters, 1M-token context)."""
        return cls()

    @classmethod
    def tiny(cls) -> "ModelConfig":
        """Two layers, hidden size 64: the CPU smoke-test size."""
        return cls(n_layers=2, dim=64, intermediate=128, n_heads=4, n_kv_heads=2, head_dim=16, vocab=256,
                   rope_theta=10_000.0, name="tiny")

"""Hand-countable costs: matrix-product FLOPs of a prefill and bytes read by one decoding step.

Kept free of torch so that the formulas are unit-tested on small, hand-computed cases.
A multiply-add counts as 2 FLOPs. Attention counts QK^T and PV (4 * head_dim FLOPs per
query-key pair and query head) over the pairs a causal mask keeps; softmax, norms and
rotary embeddings are not matrix products and are not counted.
"""

from __future__ import annotations

from storytransformer.engine.fastgen.config import ModelConfig


def matmul_params_per_layer(cfg: ModelConfig) -> int:
    """Weights one token multiplies through in a layer: q, k, v, o projections and the SwiGLU MLP."""
    qkv = cfg.dim * (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim
    out = cfg.n_heads * cfg.head_dim * cfg.dim
    mlp = 3 * cfg.dim * cfg.intermediate
    return qkv + out + mlp


def param_count(cfg: ModelConfig) -> int:
    """All parameters: embeddings, layers (matmuls, qkv bias, two norms), final norm, output head."""
    bias = (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim if cfg.qkv_bias else 0
    layer = matmul_params_per_layer(cfg) + bias + 2 * cfg.dim
    return cfg.vocab * cfg.dim + cfg.n_layers * layer + cfg.dim + cfg.dim * cfg.vocab


def causal_pairs(n_new: int, start: int = 0) -> int:
    """Query-key pairs a causal mask keeps when ``n_new`` tokens follow ``start`` cached ones."""
    return n_new * start + n_new * (n_new + 1) // 2


def prefill_flops(cfg: ModelConfig, n_new: int, start: int = 0) -> int:
    """Matmul FLOPs of prefilling ``n_new`` tokens after ``start`` cached ones (logits of the last token only)."""
    linear = 2 * n_new * cfg.n_layers * matmul_params_per_layer(cfg)
    head = 2 * cfg.dim * cfg.vocab
    attention = 4 * cfg.head_dim * cfg.n_heads * cfg.n_layers * causal_pairs(n_new, start)
    return linear + head + attention


def kv_bytes_per_token(cfg: ModelConfig, dtype_bytes: int = 2) -> int:
    """KV-cache bytes one position takes over all layers (keys and values)."""
    return 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * dtype_bytes


def weight_bytes(cfg: ModelConfig, dtype_bytes: int = 2) -> int:
    """Bytes of all parameters."""
    return param_count(cfg) * dtype_bytes


def decode_bytes(cfg: ModelConfig, context: int, dtype_bytes: int = 2) -> int:
    """Bytes one decoding step must move at least: every weight but the embedding table (one row of it),
    the keys and values of ``context`` cached positions plus the new one, and the new position's write."""
    weights = weight_bytes(cfg, dtype_bytes) - (cfg.vocab - 1) * cfg.dim * dtype_bytes
    kv = kv_bytes_per_token(cfg, dtype_bytes)
    return weights + kv * (context + 1) + kv


def eager_attention_bytes(cfg: ModelConfig, n_new: int, kv_len: int) -> int:
    """Transient memory of explicit softmax(QK^T)V for one chunk: fp32 scores and probabilities, bf16
    probabilities, a boolean mask, and the keys and values repeated to every query head."""
    scores = cfg.n_heads * n_new * kv_len * (4 + 4 + 2) + n_new * kv_len
    return scores + repeated_kv_bytes(cfg, kv_len)


def repeated_kv_bytes(cfg: ModelConfig, kv_len: int, dtype_bytes: int = 2) -> int:
    """Keys and values repeated from the key/value heads to every query head (grouped-query attention)."""
    return 2 * cfg.n_heads * kv_len * cfg.head_dim * dtype_bytes


def prefill_activation_bytes(cfg: ModelConfig, chunk: int, kv_len: int, dtype_bytes: int = 2) -> int:
    """A generous bound on one prefill chunk's activations with a memory-linear attention kernel."""
    per_token = (6 * cfg.dim + 4 * cfg.intermediate + 3 * cfg.n_heads * cfg.head_dim) * dtype_bytes
    return chunk * per_token + repeated_kv_bytes(cfg, kv_len, dtype_bytes) + 4 * cfg.vocab


def layered_prefill_bytes(cfg: ModelConfig, n_new: int, dtype_bytes: int = 2) -> int:
    """What layer-major prefill holds for all n new tokens at once: the residual stream, the queries,
    the attention output and its transposed copy (each n x dim), and the kernel's float32 statistics."""
    return 4 * n_new * cfg.dim * dtype_bytes + 4 * cfg.n_heads * n_new

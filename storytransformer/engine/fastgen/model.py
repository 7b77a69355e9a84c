"""A compact Qwen2-style decoder in plain torch, built directly on its device with random weights.

Shapes: B batch, n new tokens, L cached + new positions, S cache capacity, Hq query heads,
Hkv key/value heads, G = Hq / Hkv, D head_dim, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .attention import decode_attention, prefill_attention
from .cache import StaticKVCache, rotary_table
from .config import ModelConfig
from . import stages
from .stages import apply_rotary


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, **factory):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, **factory))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stages.rms_norm(x, self.weight, self.eps)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, **factory):
        super().__init__()
        self.cfg = cfg
        qkv = (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim
        self.wqkv = nn.Linear(cfg.dim, qkv, bias=cfg.qkv_bias, **factory)  # fused q, k, v projections
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False, **factory)

    def project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """x [B, n, dim] -> q [B, Hq, n, D], k and v [B, Hkv, n, D], rotary applied to q and k."""
        cfg, (B, n, _) = self.cfg, x.shape
        q_size, kv_size = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
        q, k, v = self.wqkv(x).split([q_size, kv_size, kv_size], dim=-1)
        q = q.view(B, n, cfg.n_heads, cfg.head_dim).transpose(1, 2)
        k = k.view(B, n, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        v = v.view(B, n, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v

    def output(self, y: torch.Tensor) -> torch.Tensor:
        """y [B, Hq, n, D] -> [B, n, dim]."""
        B, _, n, _ = y.shape
        return self.wo(y.transpose(1, 2).reshape(B, n, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig, **factory):
        super().__init__()
        self.w13 = nn.Linear(cfg.dim, 2 * cfg.intermediate, bias=False, **factory)  # fused gate and up
        self.w2 = nn.Linear(cfg.intermediate, cfg.dim, bias=False, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)  # [B, n, I] each
        return self.w2(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, **factory):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps, **factory)
        self.attention = Attention(cfg, **factory)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps, **factory)
        self.feed_forward = FeedForward(cfg, **factory)

    def forward(self, x, cos, sin, attend) -> torch.Tensor:
        """``attend(q, k, v) -> [B, Hq, n, D]`` stores k, v in the cache and attends over it."""
        q, k, v = self.attention.project(self.attention_norm(x), cos, sin)
        x = x + self.attention.output(attend(q, k, v))
        return x + self.feed_forward(self.ffn_norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig, device: torch.device | str = "cpu", dtype: torch.dtype = torch.bfloat16,
                 fused: bool = False):
        super().__init__()
        factory = {"device": torch.device(device), "dtype": dtype}
        self.cfg = cfg
        self.fused = fused  # the Triton kernels of triton_fused.py for norms, rotary, cache writes and SwiGLU
        self.tok_embeddings = nn.Embedding(cfg.vocab, cfg.dim, **factory)
        self.layers = nn.ModuleList(Block(cfg, **factory) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps, **factory)
        self.output = nn.Linear(cfg.dim, cfg.vocab, bias=False, **factory)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, dim] -> [B, V] in float32."""
        return self.output(self.norm(x)).float()

    def prefill(self, tokens: torch.Tensor, start: int, cache: StaticKVCache, impl: str,
                all_logits: bool = False) -> torch.Tensor:
        """tokens [B, n] at positions start..start+n-1 through every layer -> logits of the last one [B, V]
        (of every one [B, n, V] with ``all_logits``); fills the cache. Activations scale with n: the
        generator calls this chunk by chunk."""
        end = start + tokens.shape[1]
        pos = torch.full((1,), start, dtype=torch.long, device=tokens.device)
        return self._layers(tokens, cache.cos[start:end], cache.sin[start:end], pos, cache,
                            lambda layer, q: prefill_attention(impl, q, cache.k[layer, :, :, :end],
                                                               cache.v[layer, :, :, :end], start), all_logits)

    def decode(self, token: torch.Tensor, pos: torch.Tensor, cache: StaticKVCache, impl: str) -> torch.Tensor:
        """token [B, 1] at position ``pos`` (a one-element device tensor) -> logits [B, V].

        Graph-safe: no host synchronisation, every shape is fixed, the position is read on the device."""
        cos, sin = cache.cos.index_select(0, pos), cache.sin.index_select(0, pos)  # [1, D]
        length = pos + 1  # valid cache positions after this step, on the device
        return self._layers(token, cos, sin, pos, cache,
                            lambda layer, q: decode_attention(impl, q, cache.k[layer], cache.v[layer], length, cache))

    def _layers(self, tokens, cos, sin, pos, cache: StaticKVCache, attend, all_logits: bool = False) -> torch.Tensor:
        """Token-major: tokens [B, n] at the positions from the device tensor ``pos`` through all layers ->
        logits of the last one [B, V]. ``attend(layer, q)`` attends over the cache, in which this layer's
        keys and values are already written. Each residual add is folded into the next norm."""
        cfg, ops = self.cfg, stages.select(self.fused)
        x = self.tok_embeddings(tokens)  # [B, n, dim], the residual stream, updated in place
        h = ops.rms_norm(x, self.layers[0].attention_norm.weight, cfg.norm_eps)
        for i, layer in enumerate(self.layers):
            qkv = layer.attention.wqkv(h)
            q = ops.qkv_rotary_cache(qkv, cos, sin, pos, cache.k[i], cache.v[i], cfg.n_heads, cfg.n_kv_heads)
            h = ops.add_rms_norm(x, layer.attention.output(attend(i, q)), layer.ffn_norm.weight, cfg.norm_eps)
            ffn = layer.feed_forward
            after = self.layers[i + 1].attention_norm if i + 1 < len(self.layers) else self.norm
            h = ops.add_rms_norm(x, ffn.w2(ops.silu_mul(ffn.w13(h))), after.weight, cfg.norm_eps)
        return self.output(h if all_logits else h[:, -1]).float()

    def prefill_layered(self, tokens: torch.Tensor, start: int, cache: StaticKVCache, impl: str,
                        chunk: int) -> torch.Tensor:
        """Layer-major prefill of tokens [B, n] at positions start..: each layer takes every token before
        the next layer starts. Projections, norms and the MLP run ``chunk`` tokens at a time (their
        activations stay bounded), attention runs once per layer over all n queries, so a kernel that is
        fastest on one long causal square (cuDNN's) gets it. Holds the residual stream and the queries
        of all n tokens: 4 x n x dim x 2 bytes more than token-major chunks, still linear in n."""
        cfg, ops = self.cfg, stages.select(self.fused)
        B, n = tokens.shape
        end = start + n
        x = self.tok_embeddings(tokens)  # [B, n, dim]
        q = torch.empty(B, n, cfg.n_heads, cfg.head_dim, device=x.device, dtype=x.dtype)
        spans = [(b, c, min(c + chunk, n)) for b in range(B) for c in range(0, n, chunk)]
        positions = {c: torch.full((1,), start + c, dtype=torch.long, device=x.device) for _, c, _ in spans}
        for i, layer in enumerate(self.layers):
            keys, values = cache.k[i], cache.v[i]
            for b, c, e in spans:
                h = ops.rms_norm(x[b:b + 1, c:e], layer.attention_norm.weight, cfg.norm_eps)
                ops.qkv_rotary_cache(layer.attention.wqkv(h), cache.cos[start + c:start + e],
                                     cache.sin[start + c:start + e], positions[c], keys[b:b + 1], values[b:b + 1],
                                     cfg.n_heads, cfg.n_kv_heads, out=q[b:b + 1, c:e])
            y = prefill_attention(impl, q.transpose(1, 2), keys[:, :, :end], values[:, :, :end], start)
            y = y.transpose(1, 2)  # [B, n, Hq, D]
            for b, c, e in spans:
                h = ops.add_rms_norm(x[b:b + 1, c:e], layer.attention.wo(y[b:b + 1, c:e].reshape(1, e - c, -1)),
                                     layer.ffn_norm.weight, cfg.norm_eps)
                ffn = layer.feed_forward
                x[b:b + 1, c:e] += ffn.w2(ops.silu_mul(ffn.w13(h)))
        return self.logits(x[:, -1])

    def forward_full(self, tokens: torch.Tensor) -> torch.Tensor:
        """Reference without a cache: logits of every position [B, n, V] by explicit attention."""
        n = tokens.shape[1]
        cos, sin = rotary_table(self.cfg, n, tokens.device, self.output.weight.dtype)
        x = self.tok_embeddings(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin, lambda q, k, v: prefill_attention("eager", q, k, v, 0))
        return self.output(self.norm(x)).float()


@torch.no_grad()
def build_model(cfg: ModelConfig, device: torch.device | str, dtype: torch.dtype = torch.bfloat16,
                seed: int = 0, std: float = 0.02, fused: bool = False) -> Transformer:
    """The model with random weights, allocated and initialised on ``device`` (never on the CPU first
    when the device is a GPU). Normal(0, std) matrices keep activations finite through all layers."""
    torch.manual_seed(seed)
    model = Transformer(cfg, device=device, dtype=dtype, fused=fused)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.fill_(1.0)
        else:
            p.normal_(0.0, std)
    return model.eval().requires_grad_(False)

"""A compact Qwen2-style decoder in plain torch, built directly on its device with random weights.

One forward path, ``Transformer.forward``, serves everything: decoding (one token, its position a
device tensor, graph-safe), token-major prefill (a chunk through every layer), layer-major prefill
(every token through a layer before the next layer starts, the projections and MLP in spans of
``chunk`` tokens, attention once per layer) and the tests' reference (a fresh cache, eager attention,
every position's logits).

Shapes: B batch, n new tokens, L cached + new positions, S cache capacity, Hq query heads,
Hkv key/value heads, G = Hq / Hkv, D head_dim, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from . import stages
from .attention import decode_attention, prefill_attention
from .kv_cache import KVLayer, StaticKVCache
from .config import ModelConfig

# attend(layer index, q [B, Hq, n, D]) -> [B, Hq, n, D], over the cache in which the layer's new keys
# and values are already written
Attend = Callable[[int, torch.Tensor], torch.Tensor]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, **factory):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, **factory))


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, **factory):
        super().__init__()
        qkv = (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim
        self.wqkv = nn.Linear(cfg.dim, qkv, bias=cfg.qkv_bias, **factory)  # fused q, k, v projections
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False, **factory)


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig, **factory):
        super().__init__()
        self.w13 = nn.Linear(cfg.dim, 2 * cfg.intermediate, bias=False, **factory)  # fused gate and up
        self.w2 = nn.Linear(cfg.intermediate, cfg.dim, bias=False, **factory)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, **factory):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps, **factory)
        self.attention = Attention(cfg, **factory)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps, **factory)
        self.feed_forward = FeedForward(cfg, **factory)


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

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: StaticKVCache, attend: Attend, chunk: int | None = None,
                all_logits: bool = False) -> torch.Tensor:
        """tokens [B, n] at positions pos.. (``pos`` a one-element device tensor; cos, sin [n, D] their
        rotary rows) through every layer -> float32 logits of the last position [B, V] (of every one
        [B, n, V] with ``all_logits``); their keys and values are written into the cache.

        Without ``chunk`` (or with chunk >= n) the whole batch goes through each layer as one span and
        each residual add is folded into the next norm. With a smaller ``chunk``, each batch row is cut
        into spans of ``chunk`` tokens for the norms, projections and MLP, so those activations stay
        bounded, while ``attend`` still runs once per layer over all n queries (layer-major prefill:
        it holds the residual stream and the queries of all n tokens, 4 x n x dim x 2 bytes)."""
        cfg, ops = self.cfg, stages.select(self.fused)
        B, n = tokens.shape
        one_span = chunk is None or chunk >= n
        spans = [(slice(None), 0, n)] if one_span else \
            [(slice(b, b + 1), c, min(c + chunk, n)) for b in range(B) for c in range(0, n, chunk)]
        starts = {c: pos + c for _, c, _ in spans}  # device tensors: no host synchronisation
        x = self.tok_embeddings(tokens)  # [B, n, dim], the residual stream, updated in place
        q = torch.empty(B, n, cfg.n_heads, cfg.head_dim, device=x.device, dtype=x.dtype)  # [B, n, Hq, D]
        h = ops.rms_norm(x, self.layers[0].attention_norm.weight, cfg.norm_eps) if one_span else None
        for i, layer in enumerate(self.layers):
            kv = cache.layer(i)
            for rows, c, e in spans:  # norm, q/k/v projection, rotary; keys and values into the cache
                hs = h if one_span else ops.rms_norm(x[rows, c:e], layer.attention_norm.weight, cfg.norm_eps)
                part = kv if one_span else _rows(kv, rows)
                wqkv = layer.attention.wqkv
                if getattr(wqkv, "rope_chunk", 0):  # int4 wqkv rotating and writing the cache as it sums (int4.py)
                    wqkv.rotary_into(hs, cos[c:e], sin[c:e], starts[c], part.k, part.v, cfg.n_heads, cfg.n_kv_heads,
                                     q[rows, c:e], ops.qkv_rotary_cache, k_scale=part.k_scale, v_scale=part.v_scale)
                else:
                    ops.qkv_rotary_cache(wqkv(hs), cos[c:e], sin[c:e], starts[c], part.k, part.v, cfg.n_heads,
                                         cfg.n_kv_heads, out=q[rows, c:e], k_scale=part.k_scale, v_scale=part.v_scale)
            y = attend(i, q.transpose(1, 2)).transpose(1, 2)  # [B, n, Hq, D]
            after = self.layers[i + 1].attention_norm if i + 1 < len(self.layers) else self.norm
            for rows, c, e in spans:  # output projection, residual, norm, MLP, residual
                xs = x[rows, c:e]
                hs = ops.add_rms_norm(xs, layer.attention.wo(y[rows, c:e].flatten(2)), layer.ffn_norm.weight,
                                      cfg.norm_eps)
                ff = layer.feed_forward
                if getattr(ff.w13, "glu_chunk", 0):  # int4 w13 making silu(gate) * up as it sums (int4.py)
                    mlp = ff.w2(ff.w13.gated(hs, ops.silu_mul))
                elif getattr(ff.w2, "fuse_swiglu", False):  # int4 w2 making silu(gate) * up itself (int4.py)
                    mlp = ff.w2.swiglu(ff.w13(hs), ops.silu_mul)
                else:
                    mlp = ff.w2(ops.silu_mul(ff.w13(hs)))
                if one_span:  # the residual add folded into the next layer's norm
                    h = ops.add_rms_norm(x, mlp, after.weight, cfg.norm_eps)
                else:
                    xs += mlp
        if not one_span:
            h = ops.rms_norm(x if all_logits else x[:, -1:], self.norm.weight, cfg.norm_eps)
        return self.output(h if all_logits else h[:, -1]).float()

    # -- the ways the generator, the session and the tests call it -------------------------------------
    def prefill(self, tokens: torch.Tensor, start: int, cache: StaticKVCache, impl: str,
                all_logits: bool = False, chunk: int | None = None) -> torch.Tensor:
        """tokens [B, n] at positions start..start+n-1 -> logits of the last one [B, V] (of every one
        [B, n, V] with ``all_logits``); fills the cache. Token-major without ``chunk`` (the generator
        calls it chunk by chunk), layer-major with it."""
        end = start + tokens.shape[1]
        pos = torch.full((1,), start, dtype=torch.long, device=tokens.device)
        return self.forward(tokens, pos, cache.cos[start:end], cache.sin[start:end], cache,
                            lambda i, q: _prefill(impl, q, cache.layer(i).upto(end), start),
                            chunk=chunk, all_logits=all_logits)

    def decode(self, token: torch.Tensor, pos: torch.Tensor, cache: StaticKVCache, impl: str) -> torch.Tensor:
        """token [B, 1] at position ``pos`` (a one-element device tensor) -> logits [B, V].

        Graph-safe: no host synchronisation, every shape is fixed, the position is read on the device."""
        cos, sin = cache.cos.index_select(0, pos), cache.sin.index_select(0, pos)  # [1, D]
        length = pos + 1  # valid cache positions after this step, on the device
        return self.forward(token, pos, cos, sin, cache,
                            lambda i, q: _decode(impl, q, cache.layer(i), length, cache))

    def reference_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Every position's logits [B, n, V] from scratch: a fresh cache, eager attention, one span."""
        cache = StaticKVCache(self.cfg, tokens.shape[1], batch=tokens.shape[0], device=tokens.device,
                              dtype=self.tok_embeddings.weight.dtype)
        return self.prefill(tokens, 0, cache, "eager", all_logits=True)


def _prefill(impl: str, q: torch.Tensor, kv: KVLayer, start: int) -> torch.Tensor:
    return prefill_attention(impl, q, kv.k, kv.v, start, kv.k_scale, kv.v_scale)


def _decode(impl: str, q: torch.Tensor, kv: KVLayer, length: torch.Tensor, cache: StaticKVCache) -> torch.Tensor:
    return decode_attention(impl, q, kv.k, kv.v, length, cache, kv.k_scale, kv.v_scale)


def _rows(kv: KVLayer, rows: slice) -> KVLayer:
    return KVLayer(*(None if t is None else t[rows] for t in kv))


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

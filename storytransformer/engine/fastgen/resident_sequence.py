"""A resident sequence for the engine: every request reuses the prefix it shares with what is cached.

The engine's prompts start with the same long part (instructions and the related backlog) and end
with the request. The session keeps the tokens its static cache holds; a new prompt is compared with
them, the cache is cut back to the longest common prefix, and only the rest is prefilled. After an
edit to the backlog, everything before the edit stays cached. Generation then runs from the CUDA
graph of the generator, one token at a time so that stop strings, cancellation and deadlines are
checked between tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .kv_cache import KV_DTYPES, StaticKVCache
from .generate import Generator
from .gpu_platform import detect, kv_cache_unavailable
from .model import Transformer


class PrefixSession:
    def __init__(self, model: Transformer, max_seq_len: int, *, prefill_attn: str = "sdpa_flash",
                 decode_attn: str = "matmul", chunk: int = 8192, layered: bool = True, cuda_graph: bool = True,
                 kv_cache: str = "bf16"):
        """``kv_cache``: "bf16" (the model's dtype) or "fp8" (e4m3 with a scale per position and head, half
        the memory); an fp8 cache is read by the triton (or, as the reference, eager / matmul) kernels only."""
        weight = model.tok_embeddings.weight  # (the head may be an Int4Linear, which has no weight)
        self.model, self.device = model, weight.device
        if kv_cache not in KV_DTYPES:
            raise ValueError(f"unknown KV cache format {kv_cache!r}; choose from {', '.join(KV_DTYPES)}")
        if kv_cache == "fp8":
            why = kv_cache_unavailable(kv_cache, detect(weight.device))
            if why:
                raise ValueError(why)
            if prefill_attn not in ("triton", "eager") or decode_attn not in ("triton", "matmul"):
                raise ValueError(f"an fp8 KV cache needs triton (or eager) prefill and triton (or matmul) decoding, "
                                 f"not {prefill_attn} / {decode_attn}")
        self.cache = StaticKVCache(model.cfg, max_seq_len, device=weight.device, dtype=weight.dtype,
                                   kv_dtype=KV_DTYPES[kv_cache])
        self.generator = Generator(model, self.cache, prefill_attn, decode_attn, chunk=chunk,
                                   cuda_graph=cuda_graph, layered=layered)
        self.tokens: list[int] = []  # what the cache holds, position by position
        self.last = {"reused": 0, "prefilled": 0}  # of the latest request

    @property
    def capacity(self) -> int:
        return self.cache.max_seq_len

    def _sync(self, ids: Sequence[int]) -> torch.Tensor:
        """Make the cache hold ``ids`` (at least one position is always run, for its logits); returns
        the greedy next token [1, 1]."""
        if not ids:
            raise ValueError("an empty prompt")
        keep = 0
        for a, b in zip(self.tokens, ids[:-1]):
            if a != b:
                break
            keep += 1
        self.generator.truncate(min(keep, self.cache.length))
        keep = self.cache.length
        self.tokens = list(ids[:keep])
        first = self.generator.prefill(torch.tensor([list(ids[keep:])], device=self.device))
        self.tokens = list(ids)
        self.last = {"reused": keep, "prefilled": len(ids) - keep}
        return first

    @torch.no_grad()
    def generate(self, ids: Sequence[int], max_new_tokens: int, *, stop: Callable[[list[int]], bool] | None = None,
                 allowed: Sequence[int] | None = None) -> list[int]:
        """Greedy continuation of ``ids``: at most ``max_new_tokens``, ended early when ``stop(tokens so
        far)`` is true; with ``allowed``, only those token ids can be chosen. The cache keeps ``ids``."""
        if len(ids) + max_new_tokens > self.capacity:
            raise ValueError(f"{len(ids)} prompt + {max_new_tokens} new tokens exceed the cache of {self.capacity}")
        bias = self.generator.logit_bias
        if allowed is None:
            bias.zero_()
        else:
            bias.fill_(float("-inf"))
            index = torch.tensor([i for i in allowed if 0 <= i < bias.shape[0]], dtype=torch.long, device=bias.device)
            bias.index_fill_(0, index, 0.0)
        try:
            token = self._sync(ids)
            out = [int(token)]
            while len(out) < max_new_tokens and not (stop and stop(out)):
                token = self.generator.decode(token, 1)
                out.append(int(token))
            return out
        finally:
            bias.zero_()
            self.generator.truncate(min(len(ids), self.cache.length))
            self.tokens = self.tokens[:self.cache.length]

    @torch.no_grad()
    def score(self, context: Sequence[int], texts: Sequence[Sequence[int]]) -> list[float]:
        """Log-likelihood of each token sequence after ``context`` (context tokens not counted). The
        context is synced once (reusing the cache) and each text runs on top of it."""
        self._sync(context)  # always runs the context's last position, whose logits predict the first token
        n = len(context)
        first = torch.log_softmax(self.generator.last_logits[0], dim=-1)
        scores = []
        for seq in texts:
            if not seq:
                scores.append(0.0)
                continue
            if n + len(seq) > self.capacity:
                raise ValueError(f"{n} context + {len(seq)} tokens exceed the cache of {self.capacity}")
            total = first[seq[0]]
            if len(seq) > 1:
                ids = torch.tensor([list(seq)], device=self.device)
                logits = self.model.prefill(ids[:, :-1], n, self.cache, self.generator.prefill_attn, all_logits=True)
                total = total + torch.log_softmax(logits[0], dim=-1).gather(-1, ids[0, 1:, None]).sum()
            scores.append(float(total))
            self.cache.length = n
        return scores

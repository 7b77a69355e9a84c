"""Greedy generation over a static KV cache: chunked prefill, then decoding replayed from a CUDA graph.

Prefill runs chunk by chunk (each chunk attends to the cached positions before it), so activations
stay bounded by the chunk size while the cache grows linearly with the context. A decoding step
is a fixed sequence of kernels over fixed shapes; on CUDA it is captured once as a graph and each
token costs one graph launch instead of about a thousand Python-issued kernel launches.
"""

from __future__ import annotations

import torch

from .attention import probes_for
from .kv_cache import StaticKVCache
from .model import Transformer


class Generator:
    def __init__(self, model: Transformer, cache: StaticKVCache, prefill_attn: str = "sdpa_flash",
                 decode_attn: str = "matmul", chunk: int = 8192, cuda_graph: bool = True, compile: bool = False,
                 layered: bool = False):
        self.model, self.cache = model, cache
        self.prefill_attn, self.decode_attn, self.chunk = prefill_attn, decode_attn, chunk
        self.layered = layered  # layer-major prefill: attention over all new tokens at once per layer
        device = cache.k.device
        self.use_graph = cuda_graph and device.type == "cuda"
        self._step_fn = torch.compile(model.decode, dynamic=False) if compile else model.decode
        self._token = torch.zeros(cache.batch, 1, dtype=torch.long, device=device)  # graph input and output
        self._pos = torch.zeros(1, dtype=torch.long, device=device)
        # Added to the logits before every greedy choice: -inf outside an allowed vocabulary, else zeros.
        # One buffer for the generator's life, so a captured graph always reads the current bias.
        self.logit_bias = torch.zeros(model.cfg.vocab, dtype=torch.float32, device=device)
        self._graph = None
        self.last_logits: torch.Tensor | None = None  # of the last prefilled position, without the bias

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor, start: int | None = None) -> torch.Tensor:
        """Append tokens [B, n] to the cache (after ``start`` kept positions, default all of them) and
        return the greedy next token [B, 1]; the last position's logits [B, V] stay in ``last_logits``."""
        start = self.cache.length if start is None else start
        n = tokens.shape[1]
        if n == 0:
            raise ValueError("nothing to prefill: no new tokens")
        if start + n > self.cache.max_seq_len:
            raise ValueError(f"{start} cached + {n} new tokens exceed the cache capacity {self.cache.max_seq_len}")
        chunk = self.chunk
        if probes_for(self.cache.k.device).offset_mode.get(self.prefill_attn) == "single_chunk":
            if start:
                raise ValueError(f"{self.prefill_attn} cannot prefill after cached positions on this device")
            if not self.layered:
                chunk = n  # this backend cannot attend to a cached prefix: one chunk
        if self.layered:
            logits = self.model.prefill(tokens, start, self.cache, self.prefill_attn, chunk=chunk)
        else:
            for i in range(0, n, chunk):
                logits = self.model.prefill(tokens[:, i:i + chunk], start + i, self.cache, self.prefill_attn)
        self.cache.length = start + n
        self.last_logits = logits
        return (logits + self.logit_bias).argmax(dim=-1, keepdim=True)

    def truncate(self, length: int) -> None:
        """Keep the first ``length`` positions (a resident prefix) and forget the rest."""
        if not 0 <= length <= self.cache.length:
            raise ValueError(f"cannot keep {length} of {self.cache.length} cached positions")
        self.cache.length = length

    def _step(self) -> None:
        """One decoding step on the static buffers: read token and position, write the next token, advance."""
        logits = self._step_fn(self._token, self._pos, self.cache, self.decode_attn)
        self._token.copy_((logits + self.logit_bias).argmax(dim=-1, keepdim=True))
        self._pos.add_(1)

    def _capture(self) -> None:
        """Warm up on a side stream (Triton compilation, cuBLAS handles), then capture one step."""
        token, pos = self._token.clone(), self._pos.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._step()
                self._token.copy_(token)
                self._pos.copy_(pos)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step()
        self._token.copy_(token)  # capturing ran nothing; restore anyway in case a backend did
        self._pos.copy_(pos)
        self._graph = graph

    @torch.no_grad()
    def decode(self, first_token: torch.Tensor, steps: int) -> torch.Tensor:
        """Feed ``first_token`` [B, 1] and generate greedily: returns [B, steps], the tokens after it.
        No host synchronisation between steps."""
        if self.cache.length + steps > self.cache.max_seq_len:
            raise ValueError(f"{steps} steps after {self.cache.length} cached positions exceed the capacity "
                             f"{self.cache.max_seq_len}")
        self._token.copy_(first_token)
        self._pos.fill_(self.cache.length)
        if self.use_graph and self._graph is None:
            self._capture()
        out = []
        for _ in range(steps):
            if self._graph is not None:
                self._graph.replay()
            else:
                self._step()
            out.append(self._token.clone())
        self.cache.length += steps
        return torch.cat(out, dim=1)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Greedy continuation [B, max_new_tokens] of ``prompt`` [B, n] appended to the cache."""
        first = self.prefill(prompt)
        if max_new_tokens <= 1:
            return first[:, :max_new_tokens]
        return torch.cat([first, self.decode(first, max_new_tokens - 1)], dim=1)

    def release(self) -> None:
        """Drop the captured graph (it pins its memory pool and the cache's addresses)."""
        self._graph = None

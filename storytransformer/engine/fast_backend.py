"""The fast-path backend: fastgen over the transformers backend's weights (shared, not copied).

A static KV cache keeps the longest prefix each prompt shares with the last one (a backlog
context prefills once), with CUDA-graph decoding. ``engine.fast_path = "auto"`` turns it on for
CUDA when the model's family allows; ``"on"`` insists (and works on the CPU too, for tests);
``"off"`` never builds this backend. A request longer than the static cache, or a model the fast
path cannot run under ``auto``, goes to the transformers backend underneath: same greedy
choices, same stops, same scores.

The formats only the fast path has: ``engine.quantization = "int4"`` (the bf16 weights quantised to
4-bit after loading; the transformers layers' matrices are then dropped so the bf16 copy does not stay
resident, and no request can fall back to them) and ``engine.kv_cache = "fp8"``. Either one that cannot
run is an error naming its setting, never a silent fallback.
"""

from __future__ import annotations

import logging
from typing import Sequence

from ..config import Config
from .backend import STOP_TEXT, oom_to_engine_error, release_cached_memory
from .contract import (CancelToken, Deadline, EngineConfigError, EngineError, EngineStatus, Score, checkpoint,
                   should_stop)
from .transformers_backend import SCORE_BATCH, TransformersBackend

log = logging.getLogger("storytransformer.engine")

FAST_PATH_MAX_CACHE = 1 << 17  # tokens of KV cache the fast path reserves when no context budget is set


def release_layer_matrices(hf_model) -> None:
    """Replace the transformers decoder layers' matrices by empty tensors, so the bf16 weights the int4
    layers were made from are freed (embeddings, norms and the output head stay: the fast path shares them)."""
    import torch

    for layer in hf_model.model.layers:
        for module in layer.modules():
            if isinstance(module, torch.nn.Linear):
                w = module.weight
                module.weight = torch.nn.Parameter(torch.empty(0, dtype=w.dtype, device=w.device), requires_grad=False)


def resident_bytes(module) -> int:
    """Bytes of the distinct storages behind ``module``'s parameters and buffers (shared ones counted once)."""
    storages = {}
    for t in list(module.parameters()) + list(module.buffers()):
        if t is not None:
            st = t.untyped_storage()
            storages[st.data_ptr()] = st.nbytes()
    return sum(storages.values())


class FastPathBackend:
    """A :class:`TransformersBackend` with a fastgen ``PrefixSession`` over its weights."""

    def __init__(self, config: Config, inner: TransformersBackend):
        self.config = config
        self.inner = inner
        self.session = None  # fastgen PrefixSession once loaded (None: every call goes to ``inner``)
        self.notes: list[str] = []
        self.inner_released = False  # int4: the transformers layers have no matrices left to fall back to

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.inner.loaded

    def status(self) -> EngineStatus:
        return self.inner.status()

    def load(self, *, token: CancelToken | None = None, deadline: Deadline | None = None) -> EngineStatus:
        with self.inner.lock:
            if self.inner.loaded:
                return self.inner.status()
            st = self.inner.load(token=token, deadline=deadline)
            try:
                self._start()
            except BaseException as e:
                st.state, st.error, st.memory_bytes = "failed", str(e), None
                raise
            st.notes = list(st.notes) + list(self.notes)
            if self.session is not None:
                st.kv_cache = "fp8" if self.config.engine.kv_cache == "fp8" else st.dtype
                st.kv_cache_bytes = int(self.session.cache.nbytes)
            if self.inner_released:
                self._describe_int4(st)
            return st

    def _describe_int4(self, st: EngineStatus) -> None:
        """The int4 weights' own footprint, and what they save against the checkpoint in bf16."""
        from pathlib import Path

        from . import modelfiles

        st.memory_bytes = resident_bytes(self.session.model)
        numel = modelfiles.checkpoint_numel(Path(self.inner.weights_dir)) if self.inner.weights_dir else None
        st.memory_saved_bytes = int(numel * 2 - st.memory_bytes) if numel else None

    def _start(self) -> None:
        engine = self.config.engine
        mode = engine.fast_path
        int4, fp8 = self.inner.plan.quantization == "int4", self.inner.plan.kv_cache == "fp8"
        self.session, self.notes, self.inner_released = None, [], False
        cuda = self.inner.plan.device.startswith("cuda")
        if mode == "off" or (mode == "auto" and not cuda):
            return  # the plan refused int4 and fp8 here already (hardware.plan)
        try:
            from .fastgen.attention import OFFSET_MODE, probe_prefill
            from .fastgen.checkpoint import from_hf_model
            from .fastgen.resident_sequence import PrefixSession

            model = from_hf_model(self.inner.model)
            if int4:
                from .fastgen.int4 import quantize_linears_int4

                # SwiGLU made in w13's split sum; rotary and the cache write in wqkv's (bf16 cache only: with the
                # fp8 cache the columns would be put back and the rotary kernel run, slower than without)
                quantize_linears_int4(model, swiglu_epilogue=True, rotary_epilogue=not fp8)
                release_layer_matrices(self.inner.model)
                self.inner_released = True
                release_cached_memory()  # hand the freed bf16 matrices back to the device
            cfg, weight = model.cfg, model.output.weight
            prefill = "triton" if model.fused else "sdpa_flash"
            if probe_prefill(prefill, weight.device, weight.dtype, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim) \
                    or OFFSET_MODE.get(prefill) != "lower_right":
                prefill = "eager"  # always attends after a cached prefix
            window = self.inner.context_window()
            budget = self.config.engine.context_tokens
            capacity = min(window, budget + self.config.engine.max_new_tokens + 64 if budget else FAST_PATH_MAX_CACHE)
            try:
                self.session = PrefixSession(model, capacity, prefill_attn=prefill,
                                             decode_attn="triton" if model.fused else "matmul", layered=cuda,
                                             cuda_graph=cuda, kv_cache=engine.kv_cache)
            except ValueError as e:
                if fp8:
                    raise EngineConfigError("kv_cache", f"fp8 cannot run here: {e}; set kv_cache = \"bf16\"") from e
                raise
            self.notes = [f"fast path: static KV cache of {capacity} tokens "
                          f"({self.session.cache.nbytes / 2**20:.0f} MiB, {engine.kv_cache}) with prefix reuse, "
                          f"{prefill} prefill, "
                          + ("fused Triton stages and CUDA-graph decoding" if cuda else "no CUDA graph on the CPU")]
            if int4:
                self.notes.append("int4 weights: requests longer than the fast path's cache are refused "
                                  "(the bf16 layers were freed)")
        except EngineConfigError:
            self._abandon()
            raise
        except (ValueError, ImportError, RuntimeError) as e:
            if mode == "on" or int4 or fp8:
                self._abandon()
                if int4 or fp8:
                    fmt = "int4" if int4 else "fp8"
                    raise EngineConfigError("quantization" if int4 else "kv_cache",
                                            f"{fmt} needs the fast path, which cannot run this model: {e}") from e
                raise EngineConfigError("fast_path", f"cannot run this model: {e}") from e
            self.session = None
            self.notes = [f"fast path not used: {e}"]

    def _abandon(self) -> None:
        """A format the user asked for cannot run: no half-built fast path, no resident weights."""
        self.session, self.inner_released = None, False
        self.inner.free()

    def unload(self) -> None:
        with self.inner.lock:
            self.session, self.inner_released = None, False
            self.inner.unload()

    def _refuse_fallback(self, tokens: int) -> None:
        if self.inner_released:
            raise EngineError(f"this request needs {tokens} tokens of cache, more than the int4 fast path's "
                              f"{self.session.capacity}; raise engine.context_tokens")

    # -- model calls -----------------------------------------------------------------------
    def render(self, messages: list[dict]) -> str:
        return self.inner.render(messages)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def context_window(self) -> int:
        return self.inner.context_window()

    def _ensure(self, token, deadline) -> None:
        if not self.inner.loaded:
            self.load(token=token, deadline=deadline)

    @oom_to_engine_error
    def score(self, texts: Sequence[str], *, context: str = "", token: CancelToken | None = None,
              deadline: Deadline | None = None) -> list[Score]:
        with self.inner.lock:
            self._ensure(token, deadline)
            checkpoint(token, deadline)
            inner = self.inner
            ctx_ids = inner.context_ids(context)
            seqs = [inner.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
            needed = len(ctx_ids) + max(map(len, seqs), default=0)
            if self.session is None or needed > self.session.capacity:
                self._refuse_fallback(needed)
                return inner.score_ids(ctx_ids, seqs, token, deadline)
            out: list[Score] = []
            for i in range(0, len(seqs), SCORE_BATCH):
                checkpoint(token, deadline)
                batch = seqs[i:i + SCORE_BATCH]
                out += [Score(v, len(s)) for v, s in zip(self.session.score(ctx_ids, batch), batch)]
            return out

    @oom_to_engine_error
    def generate(self, messages: list[dict], *, max_new_tokens: int | None = None, allowed_text: str = "",
                 token: CancelToken | None = None, deadline: Deadline | None = None,
                 stop: Sequence[str] = STOP_TEXT) -> str:
        with self.inner.lock:
            self._ensure(token, deadline)
            inner = self.inner
            ids = inner.tokenizer(inner.render(messages), add_special_tokens=False)["input_ids"]
            limit = max_new_tokens or self.config.engine.max_new_tokens
            if self.session is None or len(ids) + limit > self.session.capacity:
                self._refuse_fallback(len(ids) + limit)
                return inner.generate_ids(ids, limit, allowed_text, token, deadline, stop)
            eos = inner.eos_ids()
            tok = inner.tokenizer

            def done(new: list[int]) -> bool:
                if should_stop(token, deadline) or new[-1] in eos:
                    return True
                text = tok.decode(new, skip_special_tokens=False)
                return any(s in text for s in stop)

            allowed = inner.allowed_ids(allowed_text) if allowed_text else None
            new = self.session.generate(ids, limit, stop=done, allowed=allowed)
            checkpoint(token, deadline)
            return inner.answer_text(new, stop)

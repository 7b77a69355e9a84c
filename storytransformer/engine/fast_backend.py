"""The fast-path backend: fastgen over the transformers backend's weights (shared, not copied).

A static KV cache keeps the longest prefix each prompt shares with the last one (a backlog
context prefills once), with CUDA-graph decoding. ``engine.fast_path = "auto"`` turns it on for
CUDA when the model's family allows; ``"on"`` insists (and works on the CPU too, for tests);
``"off"`` never builds this backend. A request longer than the static cache, or a model the fast
path cannot run under ``auto``, goes to the transformers backend underneath: same greedy
choices, same stops, same scores.
"""

from __future__ import annotations

import logging
from typing import Sequence

from ..config import Config
from .backend import STOP_TEXT, oom_to_engine_error
from .base import CancelToken, Deadline, EngineConfigError, EngineStatus, Score, checkpoint, should_stop
from .transformers_backend import SCORE_BATCH, TransformersBackend

log = logging.getLogger("storytransformer.engine")

FAST_PATH_MAX_CACHE = 1 << 17  # tokens of KV cache the fast path reserves when no context budget is set


class FastPathBackend:
    """A :class:`TransformersBackend` with a fastgen ``PrefixSession`` over its weights."""

    def __init__(self, config: Config, inner: TransformersBackend):
        self.config = config
        self.inner = inner
        self.session = None  # fastgen PrefixSession once loaded (None: every call goes to ``inner``)
        self.notes: list[str] = []

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
            return st

    def _start(self) -> None:
        mode = self.config.engine.fast_path
        self.session, self.notes = None, []
        cuda = self.inner.plan.device.startswith("cuda")
        if mode == "off" or (mode == "auto" and not cuda):
            return
        try:
            from .fastgen.attention import OFFSET_MODE, probe_prefill
            from .fastgen.checkpoint import from_hf_model
            from .fastgen.session import PrefixSession

            model = from_hf_model(self.inner.model)
            cfg, weight = model.cfg, model.output.weight
            prefill = "triton" if model.fused else "sdpa_flash"
            if probe_prefill(prefill, weight.device, weight.dtype, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim) \
                    or OFFSET_MODE.get(prefill) != "lower_right":
                prefill = "eager"  # always attends after a cached prefix
            window = self.inner.context_window()
            budget = self.config.engine.context_tokens
            capacity = min(window, budget + self.config.engine.max_new_tokens + 64 if budget else FAST_PATH_MAX_CACHE)
            self.session = PrefixSession(model, capacity, prefill_attn=prefill,
                                         decode_attn="triton" if model.fused else "matmul", layered=cuda,
                                         cuda_graph=cuda)
            self.notes = [f"fast path: static KV cache of {capacity} tokens "
                          f"({self.session.cache.nbytes / 2**20:.0f} MiB) with prefix reuse, {prefill} prefill, "
                          + ("fused Triton stages and CUDA-graph decoding" if cuda else "no CUDA graph on the CPU")]
        except (ValueError, ImportError, RuntimeError) as e:
            self.session = None
            if mode == "on":
                self.inner.free()
                raise EngineConfigError("fast_path", f"cannot run this model: {e}") from e
            self.notes = [f"fast path not used: {e}"]

    def unload(self) -> None:
        with self.inner.lock:
            self.session = None
            self.inner.unload()

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
            if self.session is None or len(ctx_ids) + max(map(len, seqs), default=0) > self.session.capacity:
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

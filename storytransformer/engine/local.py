"""The local engine: a transformers causal LM held in this process.

Loads a local Hugging Face directory (safetensors only, no remote code), a GGUF file (converted
once into the safetensors cache), or a hub id when the machine is online. Device, precision,
attention kernel and quantization come from :mod:`.hardware`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

from ..config import Config
from . import hardware, modelfiles
from .base import (CancelToken, Deadline, EngineConfigError, EngineError, EngineStatus, ModelLoadError, Score, checkpoint,
                   should_stop)
from .proposer import GroundedEngine

log = logging.getLogger("storytransformer.engine")

SCORE_BATCH = 8
STOP_TEXT = ("\n\n", "<|im_end|>")


def _oom_to_engine_error(fn):
    """Out of memory in a model call becomes an EngineError: the caller falls back to the
    deterministic proposals (unranked) instead of crashing, and the memory is released."""
    import functools

    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except MemoryError as e:
            raise EngineError(f"out of memory in {fn.__name__}: try a shorter input or quantization") from e
        except RuntimeError as e:
            if "out of memory" not in str(e).lower():
                raise
            self._release_cached()
            raise EngineError(f"out of memory in {fn.__name__}: try a shorter input or quantization") from e

    return call


class LocalEngine(GroundedEngine):
    """A resident model. Calls are serialised by a lock; the model loads on first use."""

    def __init__(self, config: Config | None = None, capabilities: hardware.Capabilities | None = None,
                 cache_root: Path | None = None):
        super().__init__(config)
        self._caps = capabilities
        self.cache_root = cache_root
        self._lock = threading.RLock()
        self.model = None
        self.tokenizer = None
        self.fast = None  # fastgen PrefixSession over the model's weights when the fast path is on
        self._fast_notes: list[str] = []
        self.plan: hardware.Plan | None = None
        self._status = EngineStatus(backend="local", model=self.config.engine.model or "(packaged SmolLM2-135M-Instruct)",
                                    cache_dir=str(modelfiles.models_cache(cache_root)), quantization=self.config.engine.quantization)

    # -- lifecycle ---------------------------------------------------------------------
    def planned(self) -> hardware.Plan:
        """The hardware plan for this configuration (no model loaded; raises EngineConfigError)."""
        caps = self._caps or hardware.probe(hardware.device_index(self.config.engine.device))
        return hardware.plan(self.config.engine, caps)

    def status(self) -> EngineStatus:
        st = self._status
        if st.state == "unloaded" and not st.device:
            try:
                p = self.planned()
                st.device, st.dtype, st.attention, st.quantization = p.device, p.dtype, p.attention_label, p.quantization
                st.notes = list(p.notes)
            except EngineConfigError as e:
                st.error = str(e)
            self._describe_cache(st)
        return st

    def _describe_cache(self, st: EngineStatus) -> None:
        """Say whether the first load will convert the GGUF or read the cache (hashes the file)."""
        try:
            source = modelfiles.resolve(self.config.engine.model, Path(self.config.root))
        except EngineConfigError as e:
            st.error = st.error or str(e)
            return
        st.source = source.kind
        if source.kind == "gguf":
            target = modelfiles.cached_conversion(Path(source.location), self.cache_root)
            st.cache_dir = str(target)
            note = ("converted cache present: loading takes about a second" if modelfiles.is_complete(target)
                    else "no converted cache yet: the first load converts the GGUF (20-60 s)")
            if note not in st.notes:
                st.notes.append(note)

    def load(self, *, token: CancelToken | None = None, deadline: Deadline | None = None) -> EngineStatus:
        with self._lock:
            if self.model is not None:
                return self._status
            checkpoint(token, deadline)
            st = self._status
            st.state, st.error = "loading", ""
            t0 = time.perf_counter()
            try:
                self.plan = self.planned()
                source = modelfiles.resolve(self.config.engine.model, Path(self.config.root))
                st.model, st.source = source.label, source.kind
                directory, st.loaded_from = self._weights(source, token, deadline)
                checkpoint(token, deadline)
                self._load_weights(directory)
                self._start_fast_path()
            except BaseException as e:
                st.state, st.error = "failed", str(e)
                raise
            st.load_seconds = round(time.perf_counter() - t0, 3)
            st.state = "ready"
            p = self.plan
            st.device, st.dtype, st.attention, st.quantization = p.device, p.dtype, p.attention_label, p.quantization
            st.notes = list(p.notes) + list(self._fast_notes)
            st.memory_bytes = int(self.model.get_memory_footprint())
            if p.quantization != "none" and directory is not None:
                numel = modelfiles.checkpoint_numel(Path(directory))
                if numel:
                    import torch

                    full = numel * torch.empty((), dtype=hardware.torch_dtype(p.dtype)).element_size()
                    st.memory_saved_bytes = int(full - st.memory_bytes)
            log.info("model %s ready on %s in %.1f s", st.model, p.device, st.load_seconds)
            return st

    def _weights(self, source: modelfiles.ModelSource, token, deadline) -> tuple[str, str]:
        if source.kind == "gguf":
            gguf = Path(source.location)
            target = modelfiles.cached_conversion(gguf, self.cache_root)
            self._status.cache_dir = str(target)
            if modelfiles.is_complete(target):
                return str(target), "cache"
            checkpoint(token, deadline)
            log.info("converting %s to safetensors in %s (once)", gguf.name, target)
            modelfiles.convert_gguf(gguf, target)
            return str(target), "gguf"
        return source.location, source.kind

    def _load_weights(self, where: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        p = self.plan
        kwargs = dict(dtype=hardware.torch_dtype(p.dtype), attn_implementation=p.attention,
                      use_safetensors=True, trust_remote_code=False)
        q = hardware.quantization_config(p)
        if q is not None:
            kwargs.update(quantization_config=q, device_map={"": p.device})
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
            if q is None:
                model = model.to(p.device)
        except torch.OutOfMemoryError as e:
            self._free()
            if p.device != "cpu" and self.config.engine.device == "auto":
                log.warning("out of GPU memory loading the model; falling back to the CPU")
                self.plan = hardware.Plan("cpu", "float32", "eager", "none", p.notes + ("out of GPU memory: fell back to the CPU",))
                return self._load_weights(where)
            raise ModelLoadError(f"out of memory loading {where} on {p.device}: try quantization = \"nf4\" or a smaller model") from e
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as e:
            self._free()
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ModelLoadError(f"cannot load the model from {where}: {first}") from e
        model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model

    def _start_fast_path(self) -> None:
        """fastgen over the loaded weights (shared, not copied): a static KV cache that keeps the longest
        prefix each prompt shares with the last one, and CUDA-graph decoding. ``auto`` turns it on for
        CUDA when the model's family allows; ``on`` insists (and works on the CPU too, for tests)."""
        mode = self.config.engine.fast_path
        self.fast, self._fast_notes = None, []
        cuda = self.plan.device.startswith("cuda")
        if mode == "off" or (mode == "auto" and not cuda):
            return
        try:
            from .fastgen.attention import OFFSET_MODE, probe_prefill
            from .fastgen.checkpoint import from_hf_model
            from .fastgen.session import PrefixSession

            model = from_hf_model(self.model)
            cfg, weight = model.cfg, model.output.weight
            prefill = "triton" if model.fused else "sdpa_flash"
            if probe_prefill(prefill, weight.device, weight.dtype, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim) \
                    or OFFSET_MODE.get(prefill) != "lower_right":
                prefill = "eager"  # always attends after a cached prefix
            window = self.context_window()
            budget = self.config.engine.context_tokens
            capacity = min(window, budget + self.config.engine.max_new_tokens + 64 if budget else FAST_PATH_MAX_CACHE)
            self.fast = PrefixSession(model, capacity, prefill_attn=prefill,
                                      decode_attn="triton" if model.fused else "matmul", layered=cuda, cuda_graph=cuda)
            self._fast_notes = [f"fast path: static KV cache of {capacity} tokens "
                                f"({self.fast.cache.nbytes / 2**20:.0f} MiB) with prefix reuse, {prefill} prefill, "
                                + ("fused Triton stages and CUDA-graph decoding" if cuda else "no CUDA graph on the CPU")]
        except (ValueError, ImportError, RuntimeError) as e:
            self.fast = None
            if mode == "on":
                self._free()
                raise EngineConfigError("fast_path", f"cannot run this model: {e}") from e
            self._fast_notes = [f"fast path not used: {e}"]

    def unload(self) -> None:
        with self._lock:
            self._free()
            self._status.state = "unloaded"
            self._status.memory_bytes = None

    def _free(self) -> None:
        self.fast = None
        self.model = None
        self.tokenizer = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def _release_cached(self) -> None:
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def _ensure(self, token, deadline) -> None:
        if self.model is None:
            self.load(token=token, deadline=deadline)

    def _kernels(self):
        if self.plan and self.plan.attention == "sdpa" and self.plan.device.startswith("cuda"):
            return hardware.sdpa_preference()
        return nullcontext()

    # -- model calls -----------------------------------------------------------------------
    def render(self, messages: list[dict]) -> str:
        self._ensure(None, None)
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under this model's tokenizer (no special tokens added)."""
        self._ensure(None, None)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

    def context_window(self) -> int:
        """The model's context length: its position embeddings (the tokenizer's limit is often a placeholder)."""
        self._ensure(None, None)
        n = getattr(self.model.config, "max_position_embeddings", None) or getattr(self.tokenizer, "model_max_length", 0)
        return int(n) if n and n < 10**7 else 2048

    @_oom_to_engine_error
    def score(self, texts: Sequence[str], *, context: str = "", token: CancelToken | None = None,
              deadline: Deadline | None = None) -> list[Score]:
        """Log-likelihood of each text, conditioned on ``context`` (whose tokens are not counted).

        The context runs once; its KV cache is shared by every candidate, so ranking many
        candidates after a long few-shot prompt costs little more than the prompt itself."""
        import copy

        import torch

        with self._lock:
            self._ensure(token, deadline)
            checkpoint(token, deadline)
            tok, model, device = self.tokenizer, self.model, self.plan.device
            ctx_ids = tok(context, add_special_tokens=False)["input_ids"] if context else []
            if not ctx_ids:
                ctx_ids = [tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]
            seqs_all = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
            if self.fast is not None and len(ctx_ids) + max(map(len, seqs_all), default=0) <= self.fast.capacity:
                out = []
                for i in range(0, len(seqs_all), SCORE_BATCH):
                    checkpoint(token, deadline)
                    batch = seqs_all[i:i + SCORE_BATCH]
                    out += [Score(v, len(s)) for v, s in zip(self.fast.score(ctx_ids, batch), batch)]
                return out
            with torch.inference_mode(), self._kernels():
                base = model(input_ids=torch.tensor([ctx_ids], device=device), use_cache=True)
                base_cache = getattr(base, "cache", None)
                if base_cache is None:
                    base_cache = base.past_key_values
                first = torch.log_softmax(base.logits[0, -1].float(), dim=-1)
                out: list[Score] = []
                for i in range(0, len(texts), SCORE_BATCH):
                    checkpoint(token, deadline)
                    seqs = seqs_all[i:i + SCORE_BATCH]
                    width = max(1, max(map(len, seqs)))
                    ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
                    mask = torch.zeros((len(seqs), len(ctx_ids) + width), dtype=torch.long)
                    mask[:, :len(ctx_ids)] = 1
                    for j, s in enumerate(seqs):
                        ids[j, :len(s)] = torch.tensor(s, dtype=torch.long)
                        mask[j, len(ctx_ids):len(ctx_ids) + len(s)] = 1
                    cache = copy.deepcopy(base_cache)
                    cache.batch_repeat_interleave(len(seqs))
                    ids, mask = ids.to(device), mask.to(device)
                    logits = model(input_ids=ids, attention_mask=mask, use_cache=True, **{self._cache_arg(): cache}).logits
                    rest = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
                    for j, s in enumerate(seqs):
                        if not s:
                            out.append(Score(0.0, 0))
                            continue
                        total = first[s[0]] + rest[j, :len(s) - 1].sum()
                        out.append(Score(float(total), len(s)))
            return out

    def _cache_arg(self) -> str:
        """``cache`` in newer transformers 5 releases, ``past_key_values`` before."""
        import inspect

        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    @_oom_to_engine_error
    def generate(self, messages: list[dict], *, max_new_tokens: int | None = None, allowed_text: str = "",
                 token: CancelToken | None = None, deadline: Deadline | None = None,
                 stop: Sequence[str] = STOP_TEXT) -> str:
        """Greedy decoding, stopped by the end of turn, a blank line, max tokens, a cancel or the
        deadline. With ``allowed_text`` the output may only use tokens of that text (and of the
        story template), so the model cannot wander off into other vocabulary."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

        with self._lock:
            self._ensure(token, deadline)
            tok, model = self.tokenizer, self.model
            prompt = self.render(messages)
            limit = max_new_tokens or self.config.engine.max_new_tokens
            if self.fast is not None:
                ids = tok(prompt, add_special_tokens=False)["input_ids"]
                if len(ids) + limit <= self.fast.capacity:
                    return self._fast_generate(ids, limit, allowed_text, token, deadline, stop)
            enc = tok(prompt, return_tensors="pt", add_special_tokens=False).to(self.plan.device)
            n_prompt = enc["input_ids"].shape[1]

            class Stop(StoppingCriteria):
                def __call__(self, input_ids, scores, **kw):
                    if should_stop(token, deadline):
                        return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
                    text = tok.decode(input_ids[0, n_prompt:], skip_special_tokens=False)
                    done = any(s in text for s in stop)
                    return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

            processors = LogitsProcessorList()
            if allowed_text:
                processors.append(AllowedTokens(self._allowed_ids(allowed_text), model.config.vocab_size))
            with torch.inference_mode(), self._kernels():
                out = model.generate(**enc, max_new_tokens=limit,
                                     do_sample=False, logits_processor=processors,
                                     stopping_criteria=StoppingCriteriaList([Stop()]),
                                     pad_token_id=tok.pad_token_id)
            checkpoint(token, deadline)
            text = tok.decode(out[0, n_prompt:], skip_special_tokens=True)
            for s in stop:
                text = text.split(s)[0]
            return text.strip()

    def _fast_generate(self, ids: list[int], limit: int, allowed_text: str, token, deadline,
                       stop: Sequence[str]) -> str:
        """generate() through the fast path: same greedy choices, same stops."""
        tok = self.tokenizer
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])

        def done(new: list[int]) -> bool:
            if should_stop(token, deadline) or new[-1] in eos:
                return True
            text = tok.decode(new, skip_special_tokens=False)
            return any(s in text for s in stop)

        allowed = self._allowed_ids(allowed_text) if allowed_text else None
        new = self.fast.generate(ids, limit, stop=done, allowed=allowed)
        checkpoint(token, deadline)
        text = tok.decode(new, skip_special_tokens=True)
        for s in stop:
            text = text.split(s)[0]
        return text.strip()

    def _allowed_ids(self, text: str) -> list[int]:
        tok = self.tokenizer
        vocab_text = " ".join([text, text.lower(), "As a an I want to so that , . \n", "As an", "I want", "so that"])
        ids: set[int] = set()
        for piece in (vocab_text, " " + vocab_text):
            ids.update(tok(piece, add_special_tokens=False)["input_ids"])
        for word in set(vocab_text.replace(",", " ").replace(".", " ").split()):
            for variant in (word, " " + word, word.capitalize(), " " + word.capitalize()):
                ids.update(tok(variant, add_special_tokens=False)["input_ids"])
        for special in (tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")):
            if isinstance(special, int) and special >= 0:
                ids.add(special)
        return sorted(ids)


FAST_PATH_MAX_CACHE = 1 << 17  # tokens of KV cache the fast path reserves when no context budget is set


class AllowedTokens:
    """A logits processor that masks every token outside an allowed set."""

    def __init__(self, allowed: list[int], vocab_size: int):
        import torch

        self.mask = torch.full((vocab_size,), float("-inf"))
        self.mask[torch.tensor([i for i in allowed if i < vocab_size], dtype=torch.long)] = 0.0

    def __call__(self, input_ids, scores):
        mask = self.mask.to(scores.device)
        if scores.shape[-1] != mask.shape[0]:  # a vocabulary padded past the tokenizer
            full = scores.new_full((scores.shape[-1],), float("-inf"))
            full[: mask.shape[0]] = mask[: scores.shape[-1]]
            mask = full
        return scores + mask.to(scores.dtype)

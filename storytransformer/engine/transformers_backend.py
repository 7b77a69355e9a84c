"""The transformers backend: a Hugging Face causal LM held in this process.

Loads a local Hugging Face directory (safetensors only, no remote code), a GGUF file (converted
once into the safetensors cache), or a hub id when the machine is online. Device, precision,
attention kernel and quantization come from :mod:`.hardware`. Calls are serialised by
:attr:`TransformersBackend.lock`, which the fast path shares (it runs on these same weights).
"""

from __future__ import annotations

import copy
import gc
import inspect
import logging
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

from .. import hf_imports
from ..config import Config
from . import hardware, modelfiles
from .backend import STOP_TEXT, oom_to_engine_error, release_cached_memory
from .contract import (CancelToken, Deadline, EngineConfigError, EngineStatus, ModelLoadError, Score, checkpoint,
                   should_stop)

log = logging.getLogger("storytransformer.engine")

SCORE_BATCH = 8


def describe_formats(st: EngineStatus, p: hardware.Plan, kv_cache: str | None = None) -> None:
    """The weight and KV cache formats the status reports: the quantization, else the dtype; the
    fp8 cache where the plan (or ``kv_cache``, "" for the transformers cache) says so, else the dtype."""
    st.weights = p.quantization if p.quantization != "none" else p.dtype
    kv = p.kv_cache if kv_cache is None else kv_cache
    st.kv_cache = "fp8" if kv == "fp8" else p.dtype
    st.kv_cache_bytes = None


class TransformersBackend:
    """A resident transformers model; it loads on first use."""

    def __init__(self, config: Config, capabilities: hardware.Capabilities | None = None,
                 cache_root: Path | None = None):
        self.config = config
        self._caps = capabilities
        self.cache_root = cache_root
        self.lock = threading.RLock()
        self.model = None
        self.tokenizer = None
        self.plan: hardware.Plan | None = None
        self.weights_dir: str | None = None
        self._status = EngineStatus(backend="local", model=config.engine.model or "(packaged SmolLM2-135M-Instruct)",
                                    cache_dir=str(modelfiles.models_cache(cache_root)),
                                    quantization=config.engine.quantization)

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.model is not None

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
                describe_formats(st, p)
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
        with self.lock:
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
                self.weights_dir = directory
            except BaseException as e:
                st.state, st.error = "failed", str(e)
                raise
            st.load_seconds = round(time.perf_counter() - t0, 3)
            st.state = "ready"
            p = self.plan
            st.device, st.dtype, st.attention, st.quantization = p.device, p.dtype, p.attention_label, p.quantization
            describe_formats(st, p, kv_cache="")  # no fast path yet: the transformers cache is the model's dtype
            st.notes = list(p.notes)
            st.memory_bytes = int(self.model.get_memory_footprint())
            if p.quantization in hardware.BNB_QUANTIZATIONS and directory is not None:
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
        AutoModelForCausalLM, AutoTokenizer = hf_imports.names("transformers", "AutoModelForCausalLM", "AutoTokenizer")

        p = self.plan
        kwargs = dict(dtype=hardware.torch_dtype(p.dtype), attn_implementation=p.attention,
                      use_safetensors=True, trust_remote_code=False)
        q = hardware.quantization_config(p)
        if q is not None:
            kwargs.update(quantization_config=q, device_map={"": p.device})
        try:
            with hf_imports.loading():
                self.tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=False)
                model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
            if q is None:
                model = model.to(p.device)
        except torch.OutOfMemoryError as e:
            self.free()
            if p.device != "cpu" and self.config.engine.device == "auto":
                log.warning("out of GPU memory loading the model; falling back to the CPU")
                self.plan = hardware.Plan("cpu", "float32", "eager", "none", p.notes + ("out of GPU memory: fell back to the CPU",))
                return self._load_weights(where)
            raise ModelLoadError(f"out of memory loading {where} on {p.device}: try quantization = \"nf4\" or a smaller model") from e
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as e:
            self.free()
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ModelLoadError(f"cannot load the model from {where}: {first}") from e
        model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model

    def unload(self) -> None:
        with self.lock:
            self.free()
            self._status.state = "unloaded"
            self._status.memory_bytes = self._status.kv_cache_bytes = None

    def free(self) -> None:
        """Drop the weights and the tokenizer and give the memory back (the status is the caller's)."""
        self.model = None
        self.tokenizer = None
        gc.collect()
        release_cached_memory()

    def ensure(self, token: CancelToken | None = None, deadline: Deadline | None = None) -> None:
        if self.model is None:
            self.load(token=token, deadline=deadline)

    def _kernels(self):
        if self.plan and self.plan.attention == "sdpa" and self.plan.device.startswith("cuda"):
            return hardware.sdpa_preference()
        return nullcontext()

    # -- model calls -----------------------------------------------------------------------
    def render(self, messages: list[dict]) -> str:
        self.ensure()
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under this model's tokenizer (no special tokens added)."""
        self.ensure()
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

    def context_window(self) -> int:
        """The model's context length: its position embeddings (the tokenizer's limit is often a placeholder)."""
        self.ensure()
        n = getattr(self.model.config, "max_position_embeddings", None) or getattr(self.tokenizer, "model_max_length", 0)
        return int(n) if n and n < 10**7 else 2048

    def context_ids(self, context: str) -> list[int]:
        """The token ids a score is conditioned on (a lone BOS or EOS when there is no context)."""
        tok = self.tokenizer
        ids = tok(context, add_special_tokens=False)["input_ids"] if context else []
        return ids or [tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]

    @oom_to_engine_error
    def score(self, texts: Sequence[str], *, context: str = "", token: CancelToken | None = None,
              deadline: Deadline | None = None) -> list[Score]:
        """Log-likelihood of each text, conditioned on ``context`` (whose tokens are not counted).

        The context runs once; its KV cache is shared by every candidate, so ranking many
        candidates after a long few-shot prompt costs little more than the prompt itself."""
        with self.lock:
            self.ensure(token, deadline)
            checkpoint(token, deadline)
            ctx_ids = self.context_ids(context)
            seqs = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
            return self.score_ids(ctx_ids, seqs, token, deadline)

    def score_ids(self, ctx_ids: list[int], seqs_all: list[list[int]], token, deadline) -> list[Score]:
        import torch

        tok, model, device = self.tokenizer, self.model, self.plan.device
        with torch.inference_mode(), self._kernels():
            base = model(input_ids=torch.tensor([ctx_ids], device=device), use_cache=True)
            base_cache = getattr(base, "cache", None)
            if base_cache is None:
                base_cache = base.past_key_values
            first = torch.log_softmax(base.logits[0, -1].float(), dim=-1)
            out: list[Score] = []
            for i in range(0, len(seqs_all), SCORE_BATCH):
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
        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"

    @oom_to_engine_error
    def generate(self, messages: list[dict], *, max_new_tokens: int | None = None, allowed_text: str = "",
                 token: CancelToken | None = None, deadline: Deadline | None = None,
                 stop: Sequence[str] = STOP_TEXT) -> str:
        """Greedy decoding, stopped by the end of turn, a blank line, max tokens, a cancel or the
        deadline. With ``allowed_text`` the output may only use tokens of that text (and of the
        story template), so the model cannot wander off into other vocabulary."""
        with self.lock:
            self.ensure(token, deadline)
            prompt = self.render(messages)
            ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            return self.generate_ids(ids, max_new_tokens or self.config.engine.max_new_tokens, allowed_text,
                                     token, deadline, stop)

    def generate_ids(self, ids: list[int], limit: int, allowed_text: str, token, deadline,
                     stop: Sequence[str]) -> str:
        import torch
        LogitsProcessorList, StoppingCriteria, StoppingCriteriaList = hf_imports.names(
            "transformers", "LogitsProcessorList", "StoppingCriteria", "StoppingCriteriaList")

        tok, model = self.tokenizer, self.model
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.plan.device)
        n_prompt = input_ids.shape[1]

        class Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kw):
                if should_stop(token, deadline):
                    return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
                text = tok.decode(input_ids[0, n_prompt:], skip_special_tokens=False)
                done = any(s in text for s in stop)
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

        processors = LogitsProcessorList()
        if allowed_text:
            processors.append(AllowedTokens(self.allowed_ids(allowed_text), model.config.vocab_size))
        with torch.inference_mode(), self._kernels():
            out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=limit,
                                 do_sample=False, logits_processor=processors,
                                 stopping_criteria=StoppingCriteriaList([Stop()]),
                                 pad_token_id=tok.pad_token_id)
        checkpoint(token, deadline)
        return self.answer_text(out[0, n_prompt:], stop)

    def answer_text(self, new_ids, stop: Sequence[str]) -> str:
        """The decoded answer, cut at the first stop text."""
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        for s in stop:
            text = text.split(s)[0]
        return text.strip()

    def eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        return set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])

    def allowed_ids(self, text: str) -> list[int]:
        """Token ids of ``text``, its words in each casing and spacing, the story template and the end of turn."""
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

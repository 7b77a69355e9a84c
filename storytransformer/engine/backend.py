"""The backend protocol: what the proposer needs from a model, and nothing about proposals.

A backend loads and unloads a model, reports its status, scores texts and generates an answer.
Three implement it: :class:`~.transformers_backend.TransformersBackend` (a transformers model in
this process), :class:`~.fast_backend.FastPathBackend` (fastgen over those same weights) and
:class:`~.remote.RemoteBackend` (an OpenAI-compatible server). :class:`NoModel` is the backend of a
proposer that runs without a model (deterministic candidates, unranked). The proposer
(:mod:`.proposer`) holds one backend; it never asks which one.
"""

from __future__ import annotations

import functools
from typing import Protocol, Sequence, runtime_checkable

from . import prompts
from .contract import CancelToken, Deadline, EngineError, EngineStatus, Score, Unsupported

STOP_TEXT = ("\n\n", "<|im_end|>")


@runtime_checkable
class Backend(Protocol):
    """A model the proposer can call. Every call takes a cancellation token and a deadline."""

    def load(self, *, token: CancelToken | None = None, deadline: Deadline | None = None) -> EngineStatus: ...

    def unload(self) -> None: ...

    def status(self) -> EngineStatus: ...

    @property
    def loaded(self) -> bool: ...

    def score(self, texts: Sequence[str], *, context: str = "", token: CancelToken | None = None,
              deadline: Deadline | None = None) -> list[Score]: ...

    def generate(self, messages: list[dict], *, max_new_tokens: int | None = None, allowed_text: str = "",
                 token: CancelToken | None = None, deadline: Deadline | None = None,
                 stop: Sequence[str] = STOP_TEXT) -> str: ...

    def render(self, messages: list[dict]) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def context_window(self) -> int: ...


class NoModel:
    """No model at all: the proposer still offers its deterministic candidates, unranked."""

    loaded = True

    def __init__(self) -> None:
        self._status = EngineStatus(state="unloaded", backend="local", model="(none)",
                                    notes=["no model: deterministic proposals only"])

    def load(self, *, token: CancelToken | None = None, deadline: Deadline | None = None) -> EngineStatus:
        return self._status

    def unload(self) -> None:
        pass

    def status(self) -> EngineStatus:
        return self._status

    def score(self, texts, *, context="", token=None, deadline=None) -> list[Score]:
        raise Unsupported("this engine cannot score texts")

    def generate(self, messages, *, max_new_tokens=None, allowed_text="", token=None, deadline=None,
                 stop=STOP_TEXT) -> str:
        raise Unsupported("this engine cannot generate text")

    def render(self, messages: list[dict]) -> str:
        return prompts.plain(messages)

    def count_tokens(self, text: str) -> int:
        """About four characters a token, without a tokenizer."""
        return max(1, (len(text) + 3) // 4) if text else 0

    def context_window(self) -> int:
        """Unknown without a model: a common 4096."""
        return 4096


def release_cached_memory() -> None:
    """Give the CUDA caching allocator's free blocks back (no-op without torch or CUDA)."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def oom_to_engine_error(fn):
    """Out of memory in a model call becomes an EngineError: the proposer falls back to the
    deterministic proposals (unranked) instead of crashing, and the cached memory is released."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MemoryError as e:
            raise EngineError(f"out of memory in {fn.__name__}: try a shorter input or quantization") from e
        except RuntimeError as e:
            if "out of memory" not in str(e).lower():
                raise
            release_cached_memory()
            raise EngineError(f"out of memory in {fn.__name__}: try a shorter input or quantization") from e

    return call

"""The engine contract: what every engine (local model, remote server) offers, and the
small types that cross it (cancellation, deadlines, proposals, status).

Kept free of torch and HTTP imports so the CLI, the language server and the daemon
can type-check against it without loading a model.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol, Sequence, runtime_checkable

from ..findings import Finding
from ..story import Story

ProposalKind = Literal["merge", "rewrite", "split"]


class EngineError(RuntimeError):
    """Anything the engine cannot do; the message is meant for the user."""


class EngineConfigError(EngineError):
    """A setting this machine cannot honour (a missing kernel, a GPU that is not there)."""

    def __init__(self, setting: str, message: str):
        super().__init__(f"engine.{setting}: {message}")
        self.setting = setting


class ModelLoadError(EngineError):
    """A model file that is missing, corrupt or of an unsupported architecture."""


class EngineUnavailable(EngineError):
    """The engine is not loaded (or the remote server does not answer)."""


class Unsupported(EngineError):
    """The backend lacks a capability (e.g. a remote server that returns no log-probabilities)."""


class Cancelled(EngineError):
    """The caller cancelled the request."""


class DeadlineExceeded(EngineError):
    """The request ran past its deadline."""


class CancelToken:
    """Set by the caller (an LSP ``$/cancelRequest``, a closed socket); checked by the engine
    between batches and between generated tokens."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(f"request cancelled ({self.reason})")


class Deadline:
    """A point in monotonic time after which work stops. ``Deadline.never()`` has none."""

    def __init__(self, at: float | None):
        self.at = at

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(time.monotonic() + seconds)

    @classmethod
    def never(cls) -> "Deadline":
        return cls(None)

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def raise_if_expired(self) -> None:
        if self.expired:
            raise DeadlineExceeded(f"deadline exceeded by {-(self.remaining() or 0):.2f} s")


def checkpoint(token: CancelToken | None, deadline: Deadline | None) -> None:
    """Raise :class:`Cancelled` or :class:`DeadlineExceeded` if the request should stop now."""
    if token is not None:
        token.raise_if_cancelled()
    if deadline is not None:
        deadline.raise_if_expired()


def should_stop(token: CancelToken | None, deadline: Deadline | None) -> bool:
    return (token is not None and token.cancelled) or (deadline is not None and deadline.expired)


@dataclass(frozen=True)
class Grounding:
    """Why a proposal may (or may not) be shown: the validator's verdict."""

    accepted: bool
    reasons: tuple[str, ...] = ()
    invented_words: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()  # rule codes the proposal still triggers


@dataclass(frozen=True)
class Proposal:
    """A merged, rewritten or split story. ``stories`` has one line per story (two or more for a
    split); ``provenance`` maps each part (``"role"``, ``"means"``, ``"ends"``, or ``"1.means"`` for
    the first story of a split) to the id of the source story it came from."""

    kind: ProposalKind
    stories: tuple[str, ...]
    source_ids: tuple[str, ...]
    grounding: Grounding
    provenance: dict[str, str] = field(default_factory=dict)
    origin: str = "template"  # template | fix | generated
    score: float | None = None  # mean log-likelihood per token under the model, when ranked

    @property
    def text(self) -> str:
        return "\n".join(self.stories)

    @property
    def accepted(self) -> bool:
        return self.grounding.accepted

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.grounding.reasons

    def to_dict(self) -> dict:
        d = asdict(self)
        d["text"] = self.text
        d["accepted"] = self.accepted
        return d


@dataclass(frozen=True)
class Score:
    """Log-likelihood of a text (given an optional context) under the model."""

    logprob: float
    tokens: int

    @property
    def per_token(self) -> float:
        return self.logprob / max(self.tokens, 1)


@dataclass(frozen=True)
class ConflictReport:
    """The verdict on two stories. ``heuristic`` is what the rules found; ``model_yes`` the model's
    probability that they contradict (``None`` without a model)."""

    conflict: bool
    kind: str  # negation | antonym | none
    reason: str
    heuristic: bool
    model_yes: float | None = None
    source_ids: tuple[str, ...] = ()


@dataclass
class EngineStatus:
    state: str = "unloaded"  # unloaded | loading | ready | failed
    backend: str = "local"  # local | remote
    model: str = ""
    source: str = ""  # gguf | directory | hub | remote
    device: str = ""
    dtype: str = ""
    attention: str = ""
    quantization: str = "none"
    weights: str = ""  # the weights' format: int8 | nf4 | int4, else the dtype
    kv_cache: str = ""  # the KV cache's format: fp8 (the fast path's) | the dtype
    kv_cache_bytes: int | None = None  # the fast path's static cache, once loaded
    memory_bytes: int | None = None
    memory_saved_bytes: int | None = None
    cache_dir: str = ""
    loaded_from: str = ""  # gguf (converted now) | cache | directory | hub | remote
    load_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


STATUS_SCHEMA = {
    "type": "object",
    "required": ["state", "backend", "model", "device", "dtype", "attention", "quantization",
                 "memory_bytes", "cache_dir", "load_seconds"],
    "properties": {
        "state": {"enum": ["unloaded", "loading", "ready", "failed"]},
        "backend": {"enum": ["local", "remote"]},
        "model": {"type": "string"},
        "source": {"type": "string"},
        "device": {"type": "string"},
        "dtype": {"type": "string"},
        "attention": {"type": "string"},
        "quantization": {"enum": ["none", "int8", "nf4", "int4"]},
        "weights": {"type": "string"},
        "kv_cache": {"type": "string"},
        "kv_cache_bytes": {"type": ["integer", "null"], "minimum": 0},
        "memory_bytes": {"type": ["integer", "null"], "minimum": 0},
        "memory_saved_bytes": {"type": ["integer", "null"]},
        "cache_dir": {"type": "string"},
        "loaded_from": {"type": "string"},
        "load_seconds": {"type": ["number", "null"], "minimum": 0},
        "notes": {"type": "array", "items": {"type": "string"}},
        "error": {"type": "string"},
    },
}


@runtime_checkable
class Engine(Protocol):
    """What the CLI, the language server and the daemon call. Every call takes a cancellation
    token and a deadline; a stopped call raises :class:`Cancelled` or :class:`DeadlineExceeded`."""

    def load(self, *, token: CancelToken | None = None, deadline: Deadline | None = None) -> EngineStatus: ...

    def unload(self) -> None: ...

    def status(self) -> EngineStatus: ...

    def score(self, texts: Sequence[str], *, context: str = "", token: CancelToken | None = None,
              deadline: Deadline | None = None) -> list[Score]: ...

    def propose_merge(self, stories: Sequence[Story], *, token: CancelToken | None = None,
                      deadline: Deadline | None = None) -> list[Proposal]: ...

    def propose_rewrite(self, story: Story, findings: Sequence[Finding], *, token: CancelToken | None = None,
                        deadline: Deadline | None = None) -> list[Proposal]: ...

    def propose_split(self, story: Story, *, token: CancelToken | None = None,
                      deadline: Deadline | None = None) -> list[Proposal]: ...

    def check_conflict(self, a: Story, b: Story, *, token: CancelToken | None = None,
                       deadline: Deadline | None = None) -> ConflictReport: ...

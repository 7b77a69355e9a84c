"""The language-model engine: grounded merge, rewrite and split proposals, log-likelihood
scoring and conflict checks, from a local model or an OpenAI-compatible server.

One proposer (:mod:`.proposer`: grounding, validation, candidates) over one backend
(:mod:`.backend`): transformers (:mod:`.transformers_backend`), the fast path over the same weights
(:mod:`.fast_backend`) or an OpenAI-compatible server (:mod:`.remote`).

Importing this package is cheap; torch and transformers load when a model does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import Config
from .contract import (Cancelled, CancelToken, ConflictReport, Deadline, DeadlineExceeded, Engine, EngineConfigError,
                   EngineError, EngineStatus, EngineUnavailable, Grounding, ModelLoadError, Proposal, Score,
                   Unsupported)

if TYPE_CHECKING:
    from .proposer import Proposer


def create_engine(config: Config | None = None) -> "Proposer":
    """The engine the configuration asks for: the proposer over the remote backend when
    ``engine.remote_url`` is set, else over the local one."""
    from .proposer import Proposer

    config = config or Config()
    if config.engine.remote_url:
        from .remote import RemoteBackend

        return Proposer(config, RemoteBackend(config))
    from .local import local_backend

    return Proposer(config, local_backend(config))


__all__ = ["Cancelled", "CancelToken", "ConflictReport", "Deadline", "DeadlineExceeded", "Engine", "EngineConfigError",
           "EngineError", "EngineStatus", "EngineUnavailable", "Grounding", "ModelLoadError", "Proposal", "Score",
           "Unsupported", "create_engine"]

"""The language-model engine: grounded merge, rewrite and split proposals, log-likelihood
scoring and conflict checks, from a local model or an OpenAI-compatible server.

Importing this package is cheap; torch and transformers load when a model does.
"""

from __future__ import annotations

from ..config import Config
from .base import (Cancelled, CancelToken, ConflictReport, Deadline, DeadlineExceeded, Engine, EngineConfigError,
                   EngineError, EngineStatus, EngineUnavailable, Grounding, ModelLoadError, Proposal, Score,
                   Unsupported)


def create_engine(config: Config | None = None) -> Engine:
    """The engine the configuration asks for: remote when ``engine.remote_url`` is set, else local."""
    config = config or Config()
    if config.engine.remote_url:
        from .remote import RemoteEngine

        return RemoteEngine(config)
    from .local import LocalEngine

    return LocalEngine(config)


__all__ = ["Cancelled", "CancelToken", "ConflictReport", "Deadline", "DeadlineExceeded", "Engine", "EngineConfigError",
           "EngineError", "EngineStatus", "EngineUnavailable", "Grounding", "ModelLoadError", "Proposal", "Score",
           "Unsupported", "create_engine"]

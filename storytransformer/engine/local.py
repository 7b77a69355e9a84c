"""The local engine: the proposer over a model held in this process.

:func:`local_backend` picks the backend the configuration asks for: the transformers backend, with
the fast path (:mod:`.fast_backend`) over its weights unless ``engine.fast_path = "off"``.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from . import hardware
from .fast_backend import FAST_PATH_MAX_CACHE, FastPathBackend  # noqa: F401 (re-exported)
from .proposer import Proposer
from .transformers_backend import AllowedTokens, TransformersBackend  # noqa: F401 (re-exported)


def local_backend(config: Config, capabilities: hardware.Capabilities | None = None,
                  cache_root: Path | None = None) -> TransformersBackend | FastPathBackend:
    """The transformers backend, wrapped in the fast path unless it is switched off."""
    inner = TransformersBackend(config, capabilities, cache_root)
    return inner if config.engine.fast_path == "off" else FastPathBackend(config, inner)


def LocalEngine(config: Config | None = None, capabilities: hardware.Capabilities | None = None,  # noqa: N802
                cache_root: Path | None = None) -> Proposer:
    """A proposer over a local model (the name callers have always used; it builds, it is not a class)."""
    config = config or Config()
    return Proposer(config, local_backend(config, capabilities, cache_root))

"""transformers and sentence-transformers used safely from several threads at once.

The daemon preloads the embedding model while an editor may ask for the language model. transformers
resolves its names lazily, so two threads importing it at the same moment can see a half-built module
("cannot import name 'AutoModelForCausalLM'"); and ``from_pretrained`` builds models on the meta device
through process-wide state, so a load beside another one fails ("Cannot copy out of meta tensor").
Every import (:func:`names`) and every model load (:func:`loading`) holds one lock.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

_LOCK = threading.RLock()
_quiet = False


def loading() -> threading.RLock:
    """``with hf_imports.loading():`` around a ``from_pretrained`` or a SentenceTransformer load. The
    first call turns off transformers' "Loading weights" bar: a command's output is its findings."""
    global _quiet
    if not _quiet:
        _quiet = True
        try:
            names("transformers.utils", "logging").disable_progress_bar()
        except ImportError:  # pragma: no cover - depends on the installation
            pass
    return _LOCK


def names(module: str, *attrs: str) -> Any:
    """``from module import attrs`` under the lock: one value for one name, else a tuple."""
    with _LOCK:
        mod = importlib.import_module(module)
        try:
            values = tuple(getattr(mod, a) for a in attrs)
        except AttributeError as e:
            raise ImportError(f"cannot import name from {module!r}: {e}") from None
    return values[0] if len(values) == 1 else values

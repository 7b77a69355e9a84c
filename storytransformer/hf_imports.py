"""transformers and sentence-transformers imported safely from several threads at once.

transformers resolves its names lazily; two threads importing it at the same moment (the daemon
preloads the embedding model while an editor asks for the language model) can see a half-built module
and fail with "cannot import name 'AutoModelForCausalLM'". Every import of theirs goes through one lock.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

_LOCK = threading.RLock()


def names(module: str, *attrs: str) -> Any:
    """``from module import attrs`` under the lock: one value for one name, else a tuple."""
    with _LOCK:
        mod = importlib.import_module(module)
        try:
            values = tuple(getattr(mod, a) for a in attrs)
        except AttributeError as e:
            raise ImportError(f"cannot import name from {module!r}: {e}") from None
    return values[0] if len(values) == 1 else values

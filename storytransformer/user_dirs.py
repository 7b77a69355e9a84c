"""Where StoryTransformer keeps files of its own for this user: one cache root for every cache.

Run results, parser results, embeddings, converted models and tokenizers all live below
:func:`cache_root` (each in its own versioned subdirectory), so "delete the cache" is one directory
and ``$STORYTRANSFORMER_CACHE_DIR`` moves all of them (tests, CI, a shared model store).
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "STORYTRANSFORMER_CACHE_DIR"
APP = "storytransformer"


def cache_root() -> Path:
    """``$STORYTRANSFORMER_CACHE_DIR`` (``~`` expanded), else the platform's user cache directory."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP, appauthor=False))

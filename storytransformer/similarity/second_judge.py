"""The second embedding model of the pair judge (``similarity.second_model``): where it is, and its cosines.

A larger model (all-mpnet-base-v2, 418 MB, about 5x the packaged model's time per text) tells a
restatement from a template sibling better than the packaged one, but is too slow to embed every
story. The index therefore asks it only about the candidate pairs whose decision it can change (those
whose judge probability could still reach a cut), through the same embedding cache as the main model
(keyed by this model), so a warm run embeds nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .embedder import Embedder, shared_embedder
from .embedding_model import ModelError

SETTING = "tool.storytransformer.similarity.second_model"
INSTALL_HINT = "scripts/install.sh --second-judge installs all-mpnet-base-v2 and prints the line to use"


def second_model_dir(setting: str) -> Path:
    """The directory of ``similarity.second_model``; ModelError naming the setting when it is not a model."""
    path = Path(setting).expanduser()
    if not path.is_dir():
        raise ModelError(f"'{SETTING}' = {setting!r} is not a directory (a local sentence-transformers model "
                         f"directory; {INSTALL_HINT})")
    if not (path / "modules.json").is_file():
        raise ModelError(f"'{SETTING}' = {setting!r} is not a sentence-transformers model directory "
                         f"(no modules.json; {INSTALL_HINT})")
    return path.resolve()


def second_embedder(config) -> Embedder | None:
    """The second model's embedder for a SimilarityConfig (None when ``second_model`` is "")."""
    setting = getattr(config, "second_model", "") or ""
    if not setting:
        return None
    path = second_model_dir(setting)
    from .pair_judge import HAS_SECOND

    if not HAS_SECOND:  # pragma: no cover - the shipped judge_weights.py has the set
        raise ModelError(f"'{SETTING}' is set but judge_weights.py has no coefficients for it: "
                         "python benchmarks/similarity_judge.py --second-judge DIR --write")
    return shared_embedder(str(path), getattr(config, "device", "cpu"), getattr(config, "cache", True),
                           getattr(config, "batch_size", 64))


def pair_cosines(embedder: Embedder, texts_a: list, texts_b: list) -> np.ndarray:
    """(n, 2) cosines (whole stories, means) of the second model for pairs of StoryTexts; each distinct
    text is embedded once (the embedder de-duplicates and caches)."""
    n = len(texts_a)
    if not n:
        return np.zeros((0, 2), np.float64)
    flat = [t.whole for t in texts_a] + [t.whole for t in texts_b] + \
           [t.means_or_whole for t in texts_a] + [t.means_or_whole for t in texts_b]
    v = embedder.encode(flat)
    out = np.empty((n, 2), np.float64)
    out[:, 0] = np.einsum("ij,ij->i", v[:n], v[n:2 * n])
    out[:, 1] = np.einsum("ij,ij->i", v[2 * n:3 * n], v[3 * n:])
    return out

"""Texts -> unit-length embeddings, through the on-disk cache.

Vectors are stored exactly as computed (float32), so a warm run gives exactly
the results of a cold one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .embedding_cache import EmbeddingCache, text_key
from .embedding_model import load_model, model_id, resolve_model_dir

Progress = Callable[[int, int], None]
CHUNK = 512  # texts per progress report


def _round(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms > 0, norms, 1.0)
    return v


class Embedder:
    """One model plus its cache. ``encode`` embeds only the texts it has not seen."""

    def __init__(self, model: str = "", device: str = "cpu", use_cache: bool = True, batch_size: int = 64,
                 cache_path: Path | None = None, quantize: str = "none"):
        self.model_dir = resolve_model_dir(model)
        self.quantize = quantize
        self.model_id = model_id(self.model_dir) + ("" if quantize == "none" else f"-{quantize}")
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self.dim = self._dimension()
        self.cache = EmbeddingCache(self.model_id, self.dim, cache_path)
        if use_cache:
            self.cache.load()
        self.use_cache = use_cache
        self.computed = 0  # texts embedded by the model (not found in the cache)

    def _dimension(self) -> int:
        """The vector size from the pooling config, so a warm cache needs no model load."""
        import json

        try:
            modules = json.loads((self.model_dir / "modules.json").read_text("utf-8"))
            if not any("Dense" in m.get("type", "") for m in modules):
                for m in modules:
                    if "Pooling" in m.get("type", ""):
                        cfg = json.loads((self.model_dir / m["path"] / "config.json").read_text("utf-8"))
                        return int(cfg["word_embedding_dimension"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return int(self.model.get_sentence_embedding_dimension())

    @property
    def model(self):
        if self._model is None:
            self._model = load_model(self.model_dir, self.device, self.quantize)
        return self._model

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """``(len(texts), dim)`` float32 unit vectors; empty text gives a zero vector."""
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        keys = [text_key(t) for t in texts]
        found, vectors = self.cache.lookup(keys)
        out[found] = vectors
        missing: dict[bytes, list[int]] = {}
        for i in np.flatnonzero(~found):
            if texts[i].strip():
                missing.setdefault(keys[i], []).append(int(i))
        # Similar lengths in one batch means less padding; sentence-transformers only sorts within a call.
        todo = sorted(missing, key=lambda k: len(texts[missing[k][0]]))
        total = len(todo)
        if progress:
            progress(0, total)
        for start in range(0, total, CHUNK):
            chunk = todo[start:start + CHUNK]
            batch = [texts[missing[k][0]] for k in chunk]
            vecs = _round(self.model.encode(batch, batch_size=self.batch_size, convert_to_numpy=True,
                                            show_progress_bar=False))
            self.cache.put(chunk, vecs)
            for k, v in zip(chunk, vecs):
                out[missing[k]] = v
            self.computed += len(chunk)
            if progress:
                progress(min(start + CHUNK, total), total)
        return out

    def save(self) -> bool:
        """Persist new embeddings (no-op without changes or with the cache turned off)."""
        return self.cache.save() if self.use_cache and self.cache.pending else True


_EMBEDDERS: dict[tuple, Embedder] = {}


def shared_embedder(model: str = "", device: str = "cpu", use_cache: bool = True, batch_size: int = 64,
                    quantize: str = "none") -> Embedder:
    """One Embedder per (model, device, cache, quantization) in the process, so the model and
    cache load once; rebuilt when the model directory changes on disk."""
    key = (str(resolve_model_dir(model)), device, use_cache, batch_size, quantize)
    emb = _EMBEDDERS.get(key)
    if emb is None or not emb.model_id.startswith(model_id(emb.model_dir)):
        emb = _EMBEDDERS[key] = Embedder(model, device, use_cache, batch_size, quantize=quantize)
    return emb

"""A persistent embedding cache: one msgpack file per model under the user cache directory.

Layout of ``<cache root>/embeddings/<model id>.msgpack``::

    {"format": FORMAT, "model": model id, "dim": D, "dtype": "float32",
     "keys": n * 16 bytes (blake2b of each text), "vectors": n * D float32}

Vectors are stored as two flat byte strings so loading 50,000 of them is one
``numpy.frombuffer``. Writes go to a temporary file that replaces the old one
(``os.replace``), so readers never see half a file. Anything unexpected (a
truncated or corrupted file, another format or model) is treated as an empty
cache and overwritten on the next save: the cache is only ever a speed-up,
and deleting it is always safe.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from ..user_dirs import CACHE_ENV as ENV_CACHE_DIR  # noqa: F401 (re-exported)
from ..user_dirs import cache_root

FORMAT = 2  # 2: float32 vectors (1 stored float16, whose conversion cost more than it saved)
KEY_BYTES = 16
log = logging.getLogger(__name__)



def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=KEY_BYTES).digest()


class EmbeddingCache:
    """Embeddings by text hash for one model; ``get`` / ``put`` in memory, ``save`` to disk."""

    def __init__(self, model_id: str, dim: int, path: Path | None = None, max_entries: int = 500_000):
        self.model_id = model_id
        self.dim = dim
        self.max_entries = max_entries
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)
        self.path = path or cache_root() / "embeddings" / f"{safe}.msgpack"
        self._rows: dict[bytes, int] = {}
        self._matrix = np.zeros((0, dim), np.float32)
        self._pending: dict[bytes, np.ndarray] = {}  # added since the last save
        self.loaded_from_disk = 0
        self.problem: str | None = None  # why the file on disk was ignored, if it was

    # -- disk -------------------------------------------------------------
    def load(self) -> "EmbeddingCache":
        """Read the file if it is valid; otherwise remember why and start empty."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self
        except OSError as e:
            self.problem = f"cannot read {self.path}: {e}"
            return self
        try:
            import msgpack

            obj = msgpack.unpackb(data, raw=False)
            if not isinstance(obj, dict) or obj.get("format") != FORMAT:
                raise ValueError(f"format {obj.get('format') if isinstance(obj, dict) else '?'} is not {FORMAT}")
            if obj.get("model") != self.model_id or obj.get("dim") != self.dim or obj.get("dtype") != "float32":
                raise ValueError(f"made for model {obj.get('model')!r}, not {self.model_id!r}")
            keys, vectors = obj["keys"], obj["vectors"]
            n = len(keys) // KEY_BYTES
            if len(keys) != n * KEY_BYTES or len(vectors) != n * self.dim * 4:
                raise ValueError("keys and vectors do not match")
            matrix = np.frombuffer(vectors, np.float32).reshape(n, self.dim)
            if not np.isfinite(matrix).all():
                raise ValueError("non-finite vectors")
        except Exception as e:  # noqa: BLE001 - any damage means "rebuild", never a crash
            self.problem = f"ignored {self.path}: {e}"
            log.info("embedding cache %s", self.problem)
            return self
        self._matrix = matrix
        self._rows = {keys[i * KEY_BYTES:(i + 1) * KEY_BYTES]: i for i in range(n)}
        self.loaded_from_disk = n
        return self

    def save(self) -> bool:
        """Write every entry (old and new) atomically; False (and a log line) if the disk refuses."""
        if not self._pending and self.path.exists() and self.problem is None:
            return True
        self._merge_pending()
        keys = list(self._rows)
        rows = np.fromiter(self._rows.values(), np.int64, len(keys))
        if len(keys) > self.max_entries:  # keep the most recently added entries
            keys, rows = keys[-self.max_entries:], rows[-self.max_entries:]
        matrix = np.ascontiguousarray(self._matrix[rows])
        import msgpack

        payload = msgpack.packb({"format": FORMAT, "model": self.model_id, "dim": self.dim, "dtype": "float32",
                                 "keys": b"".join(keys), "vectors": matrix.tobytes()}, use_bin_type=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(payload)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as e:
            log.warning("cannot write the embedding cache %s: %s", self.path, e)
            return False
        self._matrix, self._rows = matrix, {k: i for i, k in enumerate(keys)}
        self.problem = None
        return True

    # -- memory -----------------------------------------------------------
    def _merge_pending(self) -> None:
        """Move unsaved entries into the main matrix (only when saving: it copies the matrix)."""
        if self._pending:
            base = len(self._matrix)
            keys = list(self._pending)
            self._matrix = np.concatenate([self._matrix, np.stack([self._pending[k] for k in keys])])
            for i, k in enumerate(keys):
                self._rows[k] = base + i
            self._pending = {}

    @property
    def pending(self) -> int:
        """Entries added since the last save."""
        return len(self._pending)

    def __len__(self) -> int:
        return len(self._rows) + len(self._pending)

    def lookup(self, keys: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """``(found, vectors)``: a mask of the keys present and, for those, their vectors."""
        idx = np.fromiter((self._rows.get(k, -1) for k in keys), np.int64, len(keys))
        found = idx >= 0
        vectors = self._matrix[idx[found]] if found.any() else np.zeros((0, self.dim), np.float32)
        if self._pending:
            extra = [i for i, k in enumerate(keys) if not found[i] and k in self._pending]
            if extra:
                out = np.zeros((len(keys), self.dim), np.float32)
                out[found] = vectors
                for i in extra:
                    out[i] = self._pending[keys[i]]
                found[extra] = True
                vectors = out[found]
        return found, vectors

    def put(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Remember ``vectors`` for ``keys`` (in memory until :meth:`save`)."""
        block = np.asarray(vectors, np.float32).reshape(len(keys), self.dim)
        for i, k in enumerate(keys):
            if k not in self._rows and k not in self._pending:
                self._pending[k] = block[i].copy()

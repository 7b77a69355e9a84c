"""The daemon's door to ``storytransformer.similarity`` (embeddings, the index, semantic findings).

Optional like the engine: while the module is missing or its model cannot
load, ``similar`` answers ``SIMILARITY_UNAVAILABLE`` and ``findings`` simply
carries the deterministic findings (with ``semantic: false``).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from typing import Any

from .protocol import SIMILARITY_UNAVAILABLE, DaemonError

log = logging.getLogger(__name__)

SIMILARITY_MODULE = "storytransformer.similarity"


def _kwargs_for(fn, **candidates) -> dict:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return candidates
    return {k: v for k, v in candidates.items() if k in params}


class SimilarityAdapter:
    """One index per registered root, built lazily on the first semantic request."""

    def __init__(self, module: str = SIMILARITY_MODULE):
        self._module_name = module
        self._lock = threading.Lock()
        self._indexes: dict[str, tuple[int, Any]] = {}  # root -> (generation, index)
        self.error = ""

    def module(self):
        try:
            return importlib.import_module(self._module_name)
        except ImportError as e:
            raise DaemonError(SIMILARITY_UNAVAILABLE, f"similarity search is not available ({e}); "
                              "install the 'similarity' extra (pip install 'storytransformer[similarity]')") from None
        except Exception as e:  # noqa: BLE001
            raise DaemonError(SIMILARITY_UNAVAILABLE, f"similarity module failed to import: {type(e).__name__}: {e}") from None

    def available(self) -> bool:
        try:
            self.module()
            return True
        except DaemonError:
            return False

    def index_for(self, root) -> Any:
        """The root's index, rebuilt (incrementally when the index supports it) after workspace changes."""
        mod = self.module()
        cls = getattr(mod, "SimilarityIndex", None)
        if cls is None:
            raise DaemonError(SIMILARITY_UNAVAILABLE, f"{self._module_name} has no SimilarityIndex")
        with self._lock:
            gen, index = self._indexes.get(root.path, (-1, None))
            if index is not None and gen == root.generation:
                return index
            stories = list(root.workspace.stories())
            try:
                if index is not None and callable(getattr(index, "update", None)):
                    index.update(stories)
                else:
                    build = getattr(cls, "build", None) or getattr(cls, "from_stories", None)
                    cfg = root.config.similarity
                    index = build(stories, **_kwargs_for(build, config=cfg)) if build else cls(**_kwargs_for(cls, config=cfg))
                    if build is None and callable(getattr(index, "add", None)):
                        index.add(stories)
            except DaemonError:
                raise
            except Exception as e:  # noqa: BLE001 - a missing model must not take the daemon down
                log.exception("similarity index failed")
                raise DaemonError(SIMILARITY_UNAVAILABLE, f"similarity index failed: {type(e).__name__}: {e}") from None
            self._indexes[root.path] = (root.generation, index)
            return index

    def forget(self, root_path: str) -> None:
        with self._lock:
            self._indexes.pop(root_path, None)

    def similar(self, roots, text: str, k: int) -> list[tuple[Any, float]]:
        """(story, score) pairs over every registered root, best first."""
        hits: list[tuple[Any, float]] = []
        for root in roots:
            with root.lock:
                index = self.index_for(root)
                search = getattr(index, "search", None) or getattr(index, "query", None)
                if search is None:
                    raise DaemonError(SIMILARITY_UNAVAILABLE, "the similarity index has no search method")
                try:
                    found = search(text, **_kwargs_for(search, k=k, top_k=k))
                except Exception as e:  # noqa: BLE001
                    raise DaemonError(SIMILARITY_UNAVAILABLE, f"similarity search failed: {type(e).__name__}: {e}") from None
            for item in found:
                if isinstance(item, tuple) and len(item) >= 2:
                    hits.append((item[0], float(item[1])))
                else:
                    hits.append((getattr(item, "story", item), float(getattr(item, "score", 0.0))))
        hits.sort(key=lambda h: -h[1])
        return hits[:k]

    def semantic_findings(self, root, path: str) -> list | None:
        """Semantic findings (ST603-ST605) for one file, or None when similarity is unavailable."""
        try:
            mod = self.module()
        except DaemonError:
            return None
        fn = getattr(mod, "semantic_findings", None)
        if fn is None:
            return None
        with root.lock:
            try:
                kw = _kwargs_for(fn, paths=[path], path=path, config=root.config, index=None)
                if "index" in kw:
                    kw["index"] = self.index_for(root)
                return [f for f in fn(root.workspace, **kw) if f.file == path]
            except DaemonError as e:
                self.error = e.message
                return None
            except Exception as e:  # noqa: BLE001
                log.exception("semantic findings failed")
                self.error = f"{type(e).__name__}: {e}"
                return None

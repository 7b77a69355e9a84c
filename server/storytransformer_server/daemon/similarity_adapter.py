"""The daemon's door to ``storytransformer.similarity``: one embedding index per root.

Embedding a workspace takes seconds (minutes for a huge one, or when the
model loads the first time), so it never sits in the path of a ``findings``
request: the index is brought up to date in the background, on one thread
(the embedding model is not shared between threads), and the clients are
told with ``index/changed {reason: "semantic"}`` when fresh semantic
findings are ready. Until then ``findings`` answers the deterministic ones
with ``semantic_pending: true``. Semantic findings are kept per file for the
current workspace generation; after an edit only the findings it can change are
rebuilt (``storytransformer.similarity.incremental_findings``: the same result as
computing them all, in a fraction of the time the root's lock is held), and only
the files whose findings changed are converted to the wire again.

While the similarity package or its model is missing, ``similar`` answers
``SIMILARITY_UNAVAILABLE`` and ``findings`` carries ``semantic: false``.

Importing sentence-transformers and loading the embedding model takes seconds
(far more on a busy machine), so :meth:`SimilarityAdapter.preload` starts both on
the embedding thread as soon as the daemon listens, while the editor is still
scanning its workspace: the first root's embedding then queues behind a load
that is already under way instead of starting it. ``status`` reports it under
``similarity.embedder``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from .protocol import SIMILARITY_UNAVAILABLE, DaemonError

log = logging.getLogger(__name__)

SIMILARITY_MODULE = "storytransformer.similarity"
TYPING_SWITCH_S = 0.001  # GIL switch interval once duplicates are looked up while typing


@dataclass
class _RootIndex:
    index: Any = None
    generation: int = -1  # the root generation the index was synced to
    findings_generation: int = -1
    findings: dict[str, list] = field(default_factory=dict)  # path -> wire findings of that generation
    task: asyncio.Task | None = None
    error: str = ""
    typing: Any = None  # the typing lookup (storytransformer.similarity.typing_lookup), snapshot of ``index``
    # the findings kept between edits (storytransformer.similarity.incremental_findings): an edit rebuilds
    # only the findings it can change, inside the root's lock, instead of every finding of the workspace
    incremental: Any = None


class SimilarityAdapter:
    def __init__(self, on_ready: Callable[[Any], None] | None = None, module: str = SIMILARITY_MODULE):
        self._module_name = module
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embeddings")
        # Typing lookups read a snapshot and embed one line: they never queue behind an index refresh.
        self._typing_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="typing")
        self._roots: dict[str, _RootIndex] = {}
        self._on_ready = on_ready or (lambda root: None)
        self.error = ""
        # the default embedding model, loaded ahead of the first root: idle | loading | loaded | failed | unavailable
        self.embedder: dict[str, Any] = {"state": "idle"}

    def module(self):
        try:
            return importlib.import_module(self._module_name)
        except ImportError as e:
            raise DaemonError(SIMILARITY_UNAVAILABLE, f"similarity search is not installed ({e}); "
                              "install the 'similarity' extra (pip install 'storytransformer[similarity]')") from None
        except Exception as e:  # noqa: BLE001
            raise DaemonError(SIMILARITY_UNAVAILABLE, f"similarity module failed to import: {type(e).__name__}: {e}") from None

    def available(self) -> bool:
        try:
            self.module()
            return True
        except DaemonError:
            return False

    def enabled_for(self, root) -> bool:
        return bool(getattr(root.config.similarity, "enabled", True)) and self.available()

    def forget(self, root_path: str) -> None:
        state = self._roots.pop(root_path, None)
        if state is not None and state.task is not None:
            state.task.cancel()

    def preload(self) -> None:
        """Start loading the default embedding model on the embedding thread; returns at once.

        The thread is the one every index uses, so a root registered meanwhile waits for this load
        (which it needs anyway) rather than starting a second one."""
        if self.embedder["state"] != "idle":
            return
        self.embedder = {"state": "loading", "started": time.time()}
        self._executor.submit(self._preload)

    def _preload(self) -> None:
        started = time.monotonic()
        try:
            self.module()
            from storytransformer.config import SimilarityConfig
            from storytransformer.similarity.embedder import shared_embedder

            cfg = SimilarityConfig()
            emb = shared_embedder(cfg.model, cfg.device, cfg.cache, cfg.batch_size, cfg.quantize)
            emb.model  # noqa: B018 - imports sentence-transformers and loads the weights
            threads = None
            try:
                import torch

                threads = torch.get_num_threads()
            except ImportError:  # pragma: no cover - sentence-transformers needs torch
                pass
            self.embedder = {"state": "loaded", "model": emb.model_id, "device": emb.device,
                             "load_s": round(time.monotonic() - started, 2), "torch_threads": threads}
            log.info("embedding model %s loaded ahead of the first workspace in %.1f s (torch threads: %s)",
                     emb.model_id, time.monotonic() - started, threads)
        except DaemonError as e:
            self.embedder = {"state": "unavailable", "error": e.message}
            log.info("no embedding model to load ahead: %s", e.message)
        except Exception as e:  # noqa: BLE001 - the first index build reports it again, with its root
            self.embedder = {"state": "failed", "error": f"{type(e).__name__}: {e}"}
            log.warning("loading the embedding model ahead failed: %s: %s", type(e).__name__, e)

    def status(self) -> dict:
        return {"available": self.available(), "error": self.error, "embedder": dict(self.embedder),
                "roots": {p: {"stories": len(s.index) if s.index is not None else 0, "generation": s.generation,
                              "building": bool(s.task and not s.task.done()), "error": s.error}
                          for p, s in self._roots.items()}}

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- keeping the index fresh -------------------------------------------
    def refresh_soon(self, root) -> asyncio.Task:
        """Start (or join) the background refresh of ``root``'s index and findings."""
        state = self._roots.setdefault(root.path, _RootIndex())
        if state.task is None or state.task.done():
            state.task = asyncio.get_running_loop().create_task(self._refresh(root, state), name=f"similarity:{root.path}")
        return state.task

    async def _refresh(self, root, state: _RootIndex) -> None:
        from .wire import finding_to_wire

        mod = self.module()
        while state.findings_generation != root.generation:
            generation = root.generation

            def embed():
                with root.lock:  # a consistent snapshot; embedding happens outside the root's lock
                    stories = list(root.workspace.stories())
                    sim_config = root.config.similarity
                if state.index is None:
                    state.index = mod.SimilarityIndex.build(stories, sim_config)
                else:
                    state.index.sync(stories)
                state.index.save_cache()
                from storytransformer.similarity.typing_lookup import TypingLookup

                typing = state.typing or TypingLookup(state.index.embedder)
                typing.refresh(state.index)
                state.typing = typing

            def compute():
                from storytransformer.similarity.incremental_findings import IncrementalFindings

                if state.incremental is None:
                    state.incremental = IncrementalFindings()
                started = time.monotonic()
                with root.lock:
                    if root.generation != generation:
                        return None  # changed again meanwhile: go round once more
                    # The index was synchronised with this generation by embed(): refresh from it.
                    changed = state.incremental.refresh(root.workspace, root.config, state.index)
                    lists = state.incremental.by_file()
                    changed_lists = {p: lists.get(p, []) for p in changed}
                # Only the files whose findings changed are converted again; a new dict, so a reader of
                # the previous generation's keeps a consistent one.
                by_file = dict(state.findings) if state.findings_generation >= 0 else {}
                for p, found in changed_lists.items():
                    if found:
                        by_file[p] = [finding_to_wire(f) for f in found]
                    else:
                        by_file.pop(p, None)
                stats = state.incremental.stats
                log.info("semantic findings of %s: %s refresh%s, %d stories rebuilt, %d files changed, %.3f s",
                         root.path, stats.mode, f" ({stats.reason})" if stats.reason else "", stats.recomputed_stories,
                         len(changed), time.monotonic() - started)
                return by_file

            try:
                await self._run(embed)
                state.generation = generation
                by_file = await self._run(compute)
            except Exception as e:  # noqa: BLE001 - a missing model must not take the daemon down
                log.exception("similarity index for %s failed", root.path)
                state.incremental = None  # the next refresh starts from nothing
                state.findings, state.findings_generation = {}, -1
                state.error = self.error = f"{type(e).__name__}: {e}"
                return
            if by_file is None:
                continue
            state.findings, state.findings_generation, state.error = by_file, generation, ""
            self._on_ready(root)

    # -- answers -----------------------------------------------------------
    def cached_findings(self, root, path: str) -> list | None:
        """Semantic findings of ``path`` if they are current for the root's generation, else None."""
        state = self._roots.get(root.path)
        if state is None or state.findings_generation != root.generation:
            return None
        return state.findings.get(path, [])

    async def findings(self, root, path: str, wait: bool) -> list | None:
        hit = self.cached_findings(root, path)
        if hit is not None or not self.enabled_for(root):
            return hit
        task = self.refresh_soon(root)
        if not wait:
            return None
        await asyncio.shield(task)
        state = self._roots.get(root.path)
        if state is not None and state.error:
            raise DaemonError(SIMILARITY_UNAVAILABLE, f"semantic findings failed: {state.error}")
        return self.cached_findings(root, path)

    async def similar(self, roots, text: str, k: int) -> list[tuple[Any, float, str]]:
        """(story, score, relation) over every registered root, best first."""
        self.module()
        hits: list[tuple[Any, float, str]] = []
        for root in roots:
            state = self._roots.get(root.path)
            if state is None or state.generation != root.generation:
                await asyncio.shield(self.refresh_soon(root))
                state = self._roots.get(root.path)
            if state is None or state.index is None:
                raise DaemonError(SIMILARITY_UNAVAILABLE, f"no similarity index for {root.path}: {state.error if state else ''}")
            try:  # on the embedding thread: a free-text query is embedded (and briefly added) there
                found = await self._run(state.index.search, text, k)
            except Exception as e:  # noqa: BLE001
                raise DaemonError(SIMILARITY_UNAVAILABLE, f"similarity search failed: {type(e).__name__}: {e}") from None
            for n in found:
                rel = getattr(n, "relation", "")
                hits.append((n.story, float(n.score), getattr(rel, "value", str(rel))))
        hits.sort(key=lambda h: -h[1])
        return hits[:k]

    async def duplicate_pairs(self, root, only=None) -> tuple[list, list]:
        """(stories, ST606's candidate pairs) of ``root``, one snapshot: its index brought up to date first, the
        pairs taken on the embedding thread (which owns the index) with the root's semantic findings.
        ``only``: a predicate on a story; only the near pairs of the stories it accepts."""
        from storytransformer.model_checking import duplicate_pairs

        from .wire import finding_from_wire

        self.module()
        for _ in range(3):  # the root may change while its index catches up; a few rounds, then the last snapshot
            state = self._roots.get(root.path)
            if state is not None and state.findings_generation == root.generation:
                break
            await asyncio.shield(self.refresh_soon(root))
        state = self._roots.get(root.path)
        if state is None or state.index is None:
            raise DaemonError(SIMILARITY_UNAVAILABLE, f"no similarity index for {root.path}: {state.error if state else ''}")

        def pairs():
            with root.lock:
                stories = list(root.workspace.stories())
                config = root.config
            files = None if only is None else {s.file for s in stories if only(s)}
            if files is not None and not files:
                return stories, []  # nothing new: no pass over the index or the findings
            # A semantic duplicate names its partners, so the accepted stories' own files hold every ST603 pair
            # that can join one of their near pairs.
            found = [finding_from_wire(d) for path, wire in state.findings.items()
                     if files is None or path in files for d in wire]
            return stories, duplicate_pairs(stories, found, config, state.index, only=only)

        return await self._run(pairs)

    async def typing(self, roots, text: str, path: str | None, line: int | None,
                     k: int | None = None) -> tuple[bool, list]:
        """(ready, matches): the stories of ``roots`` that already ask what the unfinished ``text`` (typed at
        ``path``:``line``) asks, best first; at most ``k``, by default as many as the editor shows. Not ready
        while no root has an index yet (its build is started)."""
        self.module()
        if k is None:
            from storytransformer.similarity.typing_lookup import MAX_MATCHES as k
        lookups = []
        for root in roots:
            state = self._roots.get(root.path)
            if state is None or state.generation != root.generation:
                self.refresh_soon(root)  # never waited for: the writer keeps typing
            if state is not None and state.typing is not None:
                lookups.append(state.typing)
        if not lookups:
            return False, []
        if sys.getswitchinterval() > TYPING_SWITCH_S:
            # The typed line's model call gives the GIL back at every operator; while the embedding thread
            # runs Python (an index refresh) each hand-back waited up to 5 ms: 115 ms against 70 ms at 1 ms.
            sys.setswitchinterval(TYPING_SWITCH_S)

        def find():
            return [m for lookup in lookups for m in lookup.find(text, path, line, k)]

        found = await asyncio.get_running_loop().run_in_executor(self._typing_executor, find)
        found.sort(key=lambda m: -(m.similarity if m.score is None else m.score))  # the lookup's own ranking
        return True, found[:k]

    def shutdown(self) -> None:
        for state in self._roots.values():
            if state.task is not None:
                state.task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._typing_executor.shutdown(wait=False, cancel_futures=True)

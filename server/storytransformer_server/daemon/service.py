"""The daemon's methods: what each request does, independent of sockets and framing.

Each handler is ``async def handler(ctx, params) -> result``. Core work
(parsing, rules) runs in worker threads under the root's lock; model work
goes through the engine adapter's single thread. ``ctx`` carries the
calling client, the request id, a cancel flag and progress reporting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from .engine_adapter import EngineAdapter
from .protocol import (ENGINE_STATE, INDEX_CHANGED, INVALID_PARAMS, NOT_FOUND, PROGRESS, PROTOCOL_VERSION,
                       UNAUTHORIZED, VERSION_MISMATCH, DaemonError, version_compatible)
from .model_checks import ModelChecks
from .similarity_adapter import SimilarityAdapter
from .workspaces import Root, Roots, norm_path

log = logging.getLogger(__name__)

DEBUG_ENV = "STORYTRANSFORMER_DAEMON_DEBUG"

Handler = Callable[["Context", dict], Awaitable[Any]]


@dataclass
class Context:
    """One request being served."""

    client: Any  # the server's ClientSession: .id, .notify(method, params), .handshaken, .roots
    request_id: Any
    cancel: threading.Event = field(default_factory=threading.Event)
    deadline_at: float | None = None  # time.monotonic() by which the answer is due
    _on_cancel: list = field(default_factory=list)

    def request_cancel(self, reason: str = "cancelled") -> None:
        """Cancel this request: sets :attr:`cancel` and tells the engine's token, if one was made."""
        self.cancel.set()
        for cb in list(self._on_cancel):
            try:
                cb(reason)
            except Exception:  # noqa: BLE001
                log.exception("cancel callback failed")

    def engine_token(self, engine_module):
        """An engine ``CancelToken`` that follows this request's cancellation."""
        token = engine_module.CancelToken()
        self._on_cancel.append(token.cancel)
        if self.cancel.is_set():
            token.cancel("cancelled")
        return token

    def engine_deadline(self, engine_module):
        return engine_module.Deadline(self.deadline_at)

    def progress(self, message: str, percentage: float | None = None, token: Any = None) -> None:
        """Send a ``progress`` notification to the caller; safe from any thread."""
        params = {"token": self.request_id if token is None else token, "message": message}
        if percentage is not None:
            params["percentage"] = max(0, min(100, int(percentage)))
        self.client.notify_threadsafe(PROGRESS, params)


# -- parameter checking ------------------------------------------------------
def _str(params: dict, key: str, *, optional: bool = False) -> str | None:
    v = params.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, str) or not v:
        raise DaemonError(INVALID_PARAMS, f"'{key}' must be a non-empty string")
    return v


def _int(params: dict, key: str, default: int | None = None, lo: int | None = None, hi: int | None = None) -> int:
    v = params.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise DaemonError(INVALID_PARAMS, f"'{key}' must be an integer")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise DaemonError(INVALID_PARAMS, f"'{key}' must be between {lo} and {hi}")
    return v


def _story_ref(obj: Any, where: str) -> tuple[str, str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("file"), str) or not isinstance(obj.get("id"), (str, int)):
        raise DaemonError(INVALID_PARAMS, f"{where} must be a map with 'file' (string) and 'id'")
    return norm_path(obj["file"]), str(obj["id"])


def _locked(root: Root, fn, *args):
    with root.lock:
        return fn(*args)


class Service:
    """Holds the daemon's state (roots, engine, similarity) and implements every method."""

    def __init__(self, host, settings):
        self.host = host  # the server: broadcast(), clients(), request_stop(), started_at, token
        self.settings = settings
        self.roots = Roots()
        self._opening: dict[str, asyncio.Future] = {}
        self.engine = EngineAdapter(on_state=lambda st: host.broadcast_threadsafe(ENGINE_STATE, st), run_cpu=host.run_cpu)
        self.similarity = SimilarityAdapter(on_ready=self._semantic_ready)
        self.model_checks = ModelChecks(host, self.engine, self.similarity)
        self.watcher = None  # set by the server (needs the loop)
        self.methods: dict[str, Handler] = {
            "handshake": self.handshake,
            "status": self.status,
            "workspace/register": self.register,
            "workspace/unregister": self.unregister,
            "document/overlay": self.overlay,
            "document/close": self.close_document,
            "findings": self.findings,
            "similar": self.similar,
            "similar/typing": self.similar_typing,
            "model/check": self.model_check,
            "propose/merge": self.propose_merge,
            "propose/rewrite": self.propose_rewrite,
            "propose/split": self.propose_split,
            "engine/status": self.engine_status,
            "engine/load": self.engine_load,
            "engine/unload": self.engine_unload,
            "cancel": self.cancel,
            "shutdown": self.shutdown,
        }
        if os.environ.get(DEBUG_ENV) == "1":  # test hooks: a request that is slow on purpose
            self.methods["debug/sleep"] = self.debug_sleep

    MODEL_CHECK_SLACK_S = 120.0  # beyond a model check's own seconds: the near pairs, loading the model

    def deadline_for(self, method: str, params, default: float) -> float:
        """The seconds a request may take: the daemon's ``request_deadline_s``, except for ``model/check``,
        which a user starts on purpose with its own time budget (``seconds``) and watches through progress."""
        if method == "model/check" and isinstance(params, dict):
            seconds = params.get("seconds")
            if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 < seconds <= 86_400:
                return max(default, float(seconds) + self.MODEL_CHECK_SLACK_S)
            from storytransformer.model_checking import DEFAULT_SECONDS

            return max(default, DEFAULT_SECONDS + self.MODEL_CHECK_SLACK_S)
        return default

    # -- connection -------------------------------------------------------
    async def handshake(self, ctx: Context, params: dict) -> dict:
        theirs = params.get("protocol")
        if not version_compatible(theirs):
            raise DaemonError(VERSION_MISMATCH, f"client speaks protocol {theirs!r}, this daemon speaks "
                              f"{list(PROTOCOL_VERSION)}; restart the daemon (storytransformer daemon stop) "
                              "or update the client", {"protocol": list(PROTOCOL_VERSION)})
        if ctx.client.needs_token:
            import hmac

            if not isinstance(params.get("token"), str) or not hmac.compare_digest(params["token"], self.host.token or ""):
                raise DaemonError(UNAUTHORIZED, "missing or wrong token for the TCP listener")
        ctx.client.handshaken = True
        ctx.client.name = str(params.get("client", ""))[:100]
        ctx.client.pid = params.get("pid") if isinstance(params.get("pid"), int) else None
        from . import __version__

        return {"protocol": list(PROTOCOL_VERSION), "version": __version__, "pid": os.getpid(),
                "client_id": ctx.client.id, "methods": sorted(self.methods),
                "max_message_bytes": self.settings.max_message_bytes,
                "request_deadline_s": self.settings.request_deadline_s}

    async def status(self, ctx: Context, params: dict) -> dict:
        from .lifecycle import log_dir, rss_bytes

        return {
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.host.started_at, 1),
            "clients": [{"id": c.id, "name": c.name, "pid": c.pid, "transport": c.transport,
                         "in_flight": len(c.tasks)} for c in self.host.clients()],
            "roots": [await self.host.run_cpu(r.summary) for r in self.roots],
            "engine": (engine := await self.engine.status_async()),
            "similarity": self.similarity.status(),
            "model_checks": {r.path: st for r in self.roots if (st := self.model_checks.status(r.path)) is not None},
            "memory_rss_bytes": rss_bytes(),
            "device": engine.get("device") or "none (no model loaded yet)",
            "socket": str(self.host.paths.socket),
            "log": str(log_dir() / "daemon.log"),
            "tcp": self.host.tcp_address,
            "settings": {k: getattr(self.settings, k) for k in ("idle_unload_s", "idle_exit_s", "max_message_bytes")},
        }

    # -- workspaces -------------------------------------------------------
    async def register(self, ctx: Context, params: dict) -> dict:
        path = norm_path(_str(params, "root"))
        if not os.path.isdir(path):
            raise DaemonError(NOT_FOUND, f"workspace root {path} is not a directory")
        root = self.roots.by_path.get(path)
        if root is None:
            pending = self._opening.get(path)
            if pending is None:  # the first client opens it; later ones wait for the same result
                pending = self._opening[path] = asyncio.ensure_future(self._open_root(path, ctx))
                pending.add_done_callback(lambda _f: self._opening.pop(path, None))
            root = await asyncio.shield(pending)
        root.clients.add(ctx.client.id)
        ctx.client.roots.add(path)
        return await self.host.run_cpu(root.summary)

    async def _open_root(self, path: str, ctx: Context) -> Root:
        ctx.progress(f"Reading stories under {path}", 0)
        try:
            root = await self.host.run_cpu(Root.open, path)
        except Exception as e:  # ConfigError and friends: name the file and key, keep running
            raise DaemonError(INVALID_PARAMS, f"cannot open workspace {path}: {e}") from None
        self.roots.by_path[path] = root
        if self.watcher is not None:
            self.watcher.watch(path)
        ctx.progress(f"Read {len(root.workspace)} stories", 100)
        log.info("registered root %s (%d files, %d stories)", path, len(root.workspace.files), len(root.workspace))
        # every client that asked may have given up (deadline, disconnect) while it was read: do not keep it forever
        asyncio.get_running_loop().call_later(5.0, self._close_if_orphan, root)
        return root

    def _close_if_orphan(self, root: Root) -> None:
        if not root.clients and self.roots.by_path.get(root.path) is root:
            self.roots.by_path.pop(root.path, None)
            self.similarity.forget(root.path)
            self.model_checks.forget(root.path)
            if self.watcher is not None:
                self.watcher.unwatch(root.path)
            log.info("closed root %s (every client that asked for it had gone)", root.path)

    async def unregister(self, ctx: Context, params: dict) -> dict:
        path = norm_path(_str(params, "root"))
        root = self.roots.by_path.get(path)
        if root is None or ctx.client.id not in root.clients:
            return {"root": path, "registered": False}
        await self.release_root(root, ctx.client.id)
        ctx.client.roots.discard(path)
        return {"root": path, "registered": False}

    async def release_root(self, root: Root, client_id: int) -> None:
        """A client leaves a root (unregister or disconnect); the last one out closes it."""
        changed = await self.host.run_cpu(root.drop_client, client_id)
        if not root.clients and self.roots.by_path.get(root.path) is root:
            self.roots.by_path.pop(root.path, None)
            self.similarity.forget(root.path)
            self.model_checks.forget(root.path)
            if self.watcher is not None and not root.single_file:
                self.watcher.unwatch(root.path)
            log.info("closed root %s (no clients left)", root.path)
        elif changed:
            self.host.notify_root(root, INDEX_CHANGED, {"root": root.path, "paths": changed, "reason": "overlay-closed"})

    async def client_gone(self, client) -> None:
        for path in list(client.roots):
            root = self.roots.by_path.get(path)
            if root is not None:
                await self.release_root(root, client.id)
        client.roots.clear()

    async def _loose_file_root(self, path: str, ctx: Context) -> Root:
        """An editor opened a story file outside every registered folder: serve it on its own."""
        root = self.roots.by_path.get(path)
        if root is None:
            try:
                root = await self.host.run_cpu(Root.open_file, path)
            except Exception as e:  # noqa: BLE001 - a bad config above the file
                raise DaemonError(INVALID_PARAMS, f"cannot open {path}: {e}") from None
            root = self.roots.by_path.setdefault(path, root)
        root.clients.add(ctx.client.id)
        ctx.client.roots.add(path)
        return root

    def _root_for(self, path: str) -> Root:
        root = self.roots.for_path(path)
        if root is None:
            raise DaemonError(NOT_FOUND, f"{path} is not inside a registered workspace root; "
                              "call workspace/register with its folder first")
        return root

    # -- documents --------------------------------------------------------
    async def overlay(self, ctx: Context, params: dict) -> dict:
        path = norm_path(_str(params, "path"))
        text = params.get("text")
        if not isinstance(text, str):
            raise DaemonError(INVALID_PARAMS, "'text' must be a string")
        version = _int(params, "version", 0)
        root = self.roots.for_path(path) or await self._loose_file_root(path, ctx)
        root.clients.add(ctx.client.id)  # its overlays must go when it does, registered or not
        ctx.client.roots.add(root.path)
        try:
            applied = await self.host.run_cpu(root.set_overlay, path, text, version, ctx.client.id)
        except ValueError as e:
            raise DaemonError(INVALID_PARAMS, f"{path}: {e}") from None
        if applied:
            self.host.notify_root(root, INDEX_CHANGED, {"root": root.path, "paths": [path], "reason": "overlay"},
                                  exclude=ctx.client)
        return {"path": path, "version": version, "applied": applied, "generation": root.generation}

    async def close_document(self, ctx: Context, params: dict) -> dict:
        path = norm_path(_str(params, "path"))
        root = self._root_for(path)
        closed = await self.host.run_cpu(root.close_overlay, path, ctx.client.id)
        if closed:
            self.host.notify_root(root, INDEX_CHANGED, {"root": root.path, "paths": [path], "reason": "overlay-closed"},
                                  exclude=ctx.client)
        return {"path": path, "closed": closed}

    async def findings(self, ctx: Context, params: dict) -> dict:
        """Semantic findings when current (``semantic: true`` waits for them), with the deterministic ones
        in front unless ``deterministic: false``. The language server asks without them: it computes
        them itself once per edit, so the daemon lints only for clients that have no rules of their own."""
        from .wire import finding_to_wire

        path = norm_path(_str(params, "path"))
        mode = params.get("semantic", "auto")
        if mode not in (True, False, "auto"):
            raise DaemonError(INVALID_PARAMS, "'semantic' must be true, false or \"auto\"")
        deterministic = params.get("deterministic", True)
        if not isinstance(deterministic, bool):
            raise DaemonError(INVALID_PARAMS, "'deterministic' must be true or false")
        root = self._root_for(path)
        if deterministic:
            hit = root.cached_findings(path)
            generation, wire, packed = hit if hit is not None else await self.host.run_cpu(root.findings, path, finding_to_wire)
            found: Any = packed
        else:
            generation, wire, found = root.generation, [], []
        semantic, pending = False, False
        extra: list = []
        if mode is not False and self.similarity.enabled_for(root):
            extra = await self.similarity.findings(root, path, wait=mode is True)
            if extra is None:
                pending, extra = True, []
            else:
                semantic = True
        if mode is not False and self.model_checks.kept.get(root.path):
            extra = await self.host.run_cpu(_locked, root, self._with_model_findings, root, path, extra)
        if extra:
            found = wire + extra
        ov = root.overlays.get(path)
        problem = root.workspace.problems.get(path)
        return {"path": path, "version": ov.version if ov else None, "generation": generation,
                "semantic": semantic, "semantic_pending": pending, "findings": found,
                "problem": None if problem is None else {"message": problem.message, "line": problem.line,
                                                         "kind": problem.kind}}

    def _with_model_findings(self, root, path: str, semantic: list) -> list:
        from .wire import finding_to_wire

        return (self.model_checks.without_taken_back(root, path, semantic)
                + [finding_to_wire(f) for f in self.model_checks.findings_for(root, path)])

    async def model_check(self, ctx: Context, params: dict) -> dict:
        """Run the model checks on the root of ``path`` (a root or any file in it) with the resident model:
        at most ``max_questions`` questions and ``seconds`` seconds; ``thresholds`` ({code: P(yes)}) for a
        model whose own were measured. The findings are kept and added to ``findings`` replies from then on
        (clients are told with ``index/changed {reason: "model"}``)."""
        from storytransformer.model_checking import DEFAULT_QUESTIONS, DEFAULT_SECONDS, model_codes

        root = self._root_for(norm_path(_str(params, "path")))
        max_questions = _int(params, "max_questions", DEFAULT_QUESTIONS, 1, 1_000_000)
        seconds = params.get("seconds", DEFAULT_SECONDS)
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 < seconds <= 86_400:
            raise DaemonError(INVALID_PARAMS, "'seconds' must be a number of seconds between 0 and 86400")
        thresholds = params.get("thresholds") or {}
        codes = model_codes()
        if not isinstance(thresholds, dict) or any(
                k not in codes or isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1
                for k, v in thresholds.items()):
            raise DaemonError(INVALID_PARAMS, f"'thresholds' must map model rule codes ({', '.join(codes)}) to a "
                              "P(yes) between 0 and 1")
        return await self.model_checks.run(root, ctx, max_questions=max_questions, seconds=float(seconds),
                                           thresholds={k: float(v) for k, v in thresholds.items()})

    def _semantic_ready(self, root) -> None:
        """Fresh semantic findings for a root: clients refetch the files they show."""
        if self.roots.by_path.get(root.path) is root:
            self.host.notify_root(root, INDEX_CHANGED, {"root": root.path, "paths": [], "reason": "semantic",
                                                        "generation": root.generation})
            self.model_checks.edited(root)  # the edit's new near pairs, when a run is kept and the model resident

    async def similar(self, ctx: Context, params: dict) -> dict:
        from .wire import story_to_wire

        text = _str(params, "text")
        k = _int(params, "k", 5, 1, 1000)
        self.similarity.module()  # a clear error before any work when similarity is missing
        roots = list(self.roots)
        if not roots:
            return {"results": []}
        ctx.progress("Searching similar stories", 0)
        hits = await self.similarity.similar(roots, text, k)
        return {"results": [{"story": story_to_wire(s), "score": round(score, 4), "relation": rel}
                            for s, score, rel in hits]}

    async def similar_typing(self, ctx: Context, params: dict) -> dict:
        """Stories that already ask what an unfinished line asks (the editor's duplicate-while-typing hint):
        ``text`` the line, ``path`` and ``line`` (0-based) where it is typed, so it is never its own match."""
        from .wire import story_to_wire

        text = _str(params, "text")
        path = _str(params, "path", optional=True)
        line = _int(params, "line", -1, -1)
        k = _int(params, "k", lo=1, hi=20) if "k" in params else None  # None: the lookup's own MAX_MATCHES
        roots = list(self.roots)
        if path:
            path = norm_path(path)
            mine = self.roots.for_path(path)
            roots = [mine] if mine is not None else roots
        if not roots:
            return {"ready": False, "matches": []}
        ready, found = await self.similarity.typing(roots, text, path, line if line >= 0 else None, k)
        return {"ready": ready, "matches": [{"story": story_to_wire(m.story), "similarity": round(m.similarity, 4)}
                                            for m in found]}

    # -- proposals --------------------------------------------------------
    def _find_story(self, path: str, story_id: str):
        root = self._root_for(path)
        with root.lock:
            source = root.workspace.files.get(path)
            if source is None:
                raise DaemonError(NOT_FOUND, f"{path} has no stories (not a story file, or unreadable)")
            for s in source.stories:
                if s.id == story_id:
                    return root, s
        raise DaemonError(NOT_FOUND, f"no story with id {story_id!r} in {path}")

    async def _propose(self, ctx: Context, kind: str, refs: list[tuple[str, str]]) -> dict:
        found = [await self.host.run_cpu(self._find_story, p, i) for p, i in refs]
        root, stories = found[0][0], [s for _, s in found]
        mod = self.engine.module()
        token, deadline = ctx.engine_token(mod), ctx.engine_deadline(mod)
        findings: list = []
        if kind == "rewrite":
            story = stories[0]
            source = root.workspace.files.get(story.file)
            findings = await self.host.run_cpu(lambda: _locked(root, root.linter.check_story, story, source))
        if not self.engine.loaded:
            ctx.progress("Loading the language model", 0)
        ctx.progress(f"Proposing a {kind}", 10)
        outcome = await self.engine.propose(kind, stories, findings, config=root.config, token=token, deadline=deadline)
        ctx.progress("Done", 100)
        return {"kind": kind, "stories": [{"file": s.file, "id": s.id} for s in stories],
                "proposals": [p.to_dict() for p in outcome.accepted], "reason": outcome.reason,
                "rejected": [{"text": p.text, "origin": p.origin, "reasons": list(p.reasons)} for p in outcome.rejected]}

    async def propose_merge(self, ctx: Context, params: dict) -> dict:
        refs = params.get("stories")
        if not isinstance(refs, list) or len(refs) < 2:
            raise DaemonError(INVALID_PARAMS, "'stories' must be a list of at least two {file, id} maps")
        return await self._propose(ctx, "merge", [_story_ref(r, f"stories[{i}]") for i, r in enumerate(refs)])

    async def propose_rewrite(self, ctx: Context, params: dict) -> dict:
        return await self._propose(ctx, "rewrite", [_story_ref(params, "params")])

    async def propose_split(self, ctx: Context, params: dict) -> dict:
        return await self._propose(ctx, "split", [_story_ref(params, "params")])

    # -- engine -----------------------------------------------------------
    async def engine_status(self, ctx: Context, params: dict) -> dict:
        return await self.engine.status_async()

    async def engine_load(self, ctx: Context, params: dict) -> dict:
        from storytransformer.config import Config

        root_path = _str(params, "root", optional=True)
        config = self._root_for(norm_path(root_path)).config if root_path else (
            next(iter(self.roots)).config if len(self.roots) else Config())
        mod = self.engine.module()
        ctx.progress("Loading the model", 0)
        status = await self.engine.load(config, ctx.engine_token(mod), ctx.engine_deadline(mod))
        ctx.progress("Model ready", 100)
        return status

    async def engine_unload(self, ctx: Context, params: dict) -> dict:
        return await self.engine.unload("requested by a client")

    # -- control ----------------------------------------------------------
    async def cancel(self, ctx: Context, params: dict) -> dict:
        target = params.get("id")
        return {"id": target, "cancelled": ctx.client.cancel_request(target)}

    async def shutdown(self, ctx: Context, params: dict) -> dict:
        self.host.request_stop("shutdown requested by a client", delay=0.05)
        return {"stopping": True, "pid": os.getpid()}

    async def debug_sleep(self, ctx: Context, params: dict) -> dict:
        """Sleep ``seconds`` on the event loop, or in a worker thread with ``thread: true`` (like CPU work)."""
        seconds = params.get("seconds", 1)
        if not isinstance(seconds, (int, float)) or not 0 <= seconds <= 60:
            raise DaemonError(INVALID_PARAMS, "'seconds' must be a number between 0 and 60")
        if params.get("thread"):
            await self.host.run_cpu(ctx.cancel.wait, seconds)
        else:
            await asyncio.sleep(seconds)
        return {"slept": seconds, "cancelled": ctx.cancel.is_set()}

"""The asyncio side of the daemon: listeners, one session per client, one task per request.

Nothing here knows what a method does (that is :mod:`.service`). This module
only guarantees the transport's promises: a bad frame gets an error answer
(or a clean close) and never stops the daemon; one client's slow request
never delays another's; every request ends by its deadline; a client that
disappears takes its requests, overlays and roots with it.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import rpc
from .lifecycle import (InstanceLock, Paths, RuntimeDirError, ensure_private_dir, read_info, remove_stale_socket,
                        read_or_create_token, setup_logging, socket_answers, write_info)
from .protocol import (CANCELLED, DEADLINE_EXCEEDED, INDEX_CHANGED, INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND,
                       PRE_HANDSHAKE_MAX_BYTES, SHUTTING_DOWN, TOO_MANY_CONNECTIONS, DaemonError, Notification, Request,
                       Response, error, notification, parse_message, result)
from .service import Context, Service
from .settings import DaemonSettings
from .watcher import RootWatcher

log = logging.getLogger(__name__)

# A client that stops reading: past this much unsent data its connection is closed.
MAX_BACKLOG_BYTES = 64 * 1024 * 1024
HOUSEKEEPING_S = 1.0
MAX_IN_FLIGHT = 1024  # per connection
ALWAYS_ALLOWED = {"handshake", "cancel"}


class StartupError(RuntimeError):
    """The daemon cannot start (a port in use, ...); the message says what to change."""


class ClientSession:
    _ids = itertools.count(1)

    def __init__(self, server: "DaemonServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 transport: str):
        self.id = next(self._ids)
        self.server = server
        self.reader, self.writer = reader, writer
        self.transport = transport
        self.needs_token = transport == "tcp"
        self.handshaken = False
        self.expired = False  # closed for sending no handshake in time
        self.name = ""
        self.pid: int | None = None
        self.roots: set[str] = set()
        self.tasks: dict[Any, asyncio.Task] = {}
        self.contexts: dict[Any, Context] = {}
        self._write_lock = asyncio.Lock()
        self.closed = False

    # -- sending ----------------------------------------------------------
    async def send(self, message: dict) -> None:
        if self.closed:
            return
        try:
            frame = rpc.encode(message, self.server.settings.max_message_bytes)
        except rpc.FrameTooLarge as e:  # answer with the error instead of a frame the client would refuse
            if "id" not in message:
                log.warning("dropped an oversized %s notification to client %d", message.get("method"), self.id)
                return
            frame = rpc.encode(error(message["id"], DaemonError(e.code, f"the answer is too large: {e.message}", e.data)))
        async with self._write_lock:
            if self.closed:
                return
            try:
                self.writer.write(frame)
                await self.writer.drain()
            except (ConnectionError, OSError):
                self.abort()

    def notify(self, method: str, params: dict) -> None:
        """Queue a notification without waiting: a slow reader must not stall the sender."""
        if self.closed:
            return
        try:
            frame = rpc.encode(notification(method, params), self.server.settings.max_message_bytes)
        except rpc.FrameTooLarge:
            log.warning("dropped an oversized %s notification to client %d", method, self.id)
            return
        transport = self.writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_BACKLOG_BYTES:
            log.warning("client %d stopped reading (%d bytes queued); closing it", self.id, transport.get_write_buffer_size())
            self.abort()
            return
        self.writer.write(frame)

    def notify_threadsafe(self, method: str, params: dict) -> None:
        try:
            self.server.loop.call_soon_threadsafe(self.notify, method, params)
        except RuntimeError:  # the loop is closed: the daemon is gone, so is the client
            pass

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.transport.abort() if hasattr(self.writer.transport, "abort") else self.writer.close()

    # -- requests ---------------------------------------------------------
    def cancel_request(self, request_id: Any) -> bool:
        task = self.tasks.get(request_id)
        if task is None or task.done():
            return False
        ctx = self.contexts.get(request_id)
        if ctx is not None:
            ctx.request_cancel("cancelled by the client")
        task.cancel()
        return True


class DaemonServer:
    def __init__(self, settings: DaemonSettings, paths: Paths):
        self.settings = settings
        self.paths = paths
        self.sessions: dict[int, ClientSession] = {}
        self.started_at = time.monotonic()
        self.last_client_seen = time.monotonic()
        self.token: str | None = None
        self.tcp_address: list | None = None
        self.loop: asyncio.AbstractEventLoop
        self._stop: asyncio.Event
        self._stop_reason = ""
        self._servers: list[asyncio.base_events.Server] = []
        self._socket_ino: tuple[int, int] | None = None
        # Our own pool, not the loop's default one: at exit we must not wait for a long reload or a
        # sleeping request (asyncio.run would join the default pool's threads).
        self.cpu_pool = ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) + 2), thread_name_prefix="daemon-cpu")
        self.service = Service(self, settings)

    # -- used by the service ---------------------------------------------
    async def run_cpu(self, fn, *args):
        """Run core work (parsing, rules) in the CPU pool, off the event loop."""
        return await self.loop.run_in_executor(self.cpu_pool, functools.partial(fn, *args))

    def clients(self) -> list[ClientSession]:
        return list(self.sessions.values())

    def broadcast(self, method: str, params: dict) -> None:
        for s in self.clients():
            if s.handshaken:
                s.notify(method, params)

    def broadcast_threadsafe(self, method: str, params: dict) -> None:
        try:
            self.loop.call_soon_threadsafe(self.broadcast, method, params)
        except RuntimeError:  # the loop is closed
            pass

    def notify_root(self, root, method: str, params: dict, exclude: ClientSession | None = None) -> None:
        for s in self.clients():
            if s is not exclude and s.id in root.clients:
                s.notify(method, params)

    def request_stop(self, reason: str, delay: float = 0.0) -> None:
        if not self._stop_reason:
            self._stop_reason = reason
        self.loop.call_later(delay, self._stop.set)

    # -- running ----------------------------------------------------------
    async def run(self) -> str:
        """Serve until stopped; returns why it stopped. The caller holds the instance lock."""
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                self.loop.add_signal_handler(sig, self.request_stop, f"signal {signal.Signals(sig).name}")
            except (NotImplementedError, RuntimeError):
                pass
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others could connect
        try:
            unix = await asyncio.start_unix_server(lambda r, w: self._serve(r, w, "unix"), path=os.fspath(self.paths.socket),
                                                   limit=2 ** 16)
        finally:
            os.umask(old_umask)
        os.chmod(self.paths.socket, 0o600)
        st = os.stat(self.paths.socket)
        self._socket_ino = (st.st_dev, st.st_ino)
        self._servers.append(unix)
        if self.settings.tcp_port:
            token_path = Path(self.settings.token_file) if self.settings.token_file else self.paths.token
            self.token = read_or_create_token(token_path)
            try:
                tcp = await asyncio.start_server(lambda r, w: self._serve(r, w, "tcp"), host="127.0.0.1",
                                                 port=self.settings.tcp_port)
            except OSError as e:
                unix.close()
                self._remove_own_files()
                raise StartupError(f"cannot listen on 127.0.0.1:{self.settings.tcp_port}: {e.strerror or e}") from None
            self._servers.append(tcp)
            self.tcp_address = list(tcp.sockets[0].getsockname()[:2])
            log.info("also listening on tcp %s:%d (token required)", *self.tcp_address)
        watcher: RootWatcher | None = RootWatcher(self._on_disk_batch, self.settings.debounce_s,
                                                  self.settings.max_batch_delay_s)
        try:
            watcher.start()
        except ImportError as e:  # the 'daemon' extra is missing: serve on, without seeing outside changes
            log.warning("file watching is off (%s); install it with: pip install 'storytransformer[daemon]'", e)
            watcher = None
        self.service.watcher = watcher
        write_info(self.paths, {"pid": os.getpid(), "started": time.time(), "socket": str(self.paths.socket),
                                "tcp": self.tcp_address})
        log.info("daemon %d listening on %s", os.getpid(), self.paths.socket)
        self.service.similarity.preload()  # the editor's scan runs meanwhile; the first root needs the model
        housekeeping = asyncio.create_task(self._housekeeping(), name="housekeeping")
        try:
            await self._stop.wait()
        finally:
            log.info("stopping: %s", self._stop_reason or "stop requested")
            housekeeping.cancel()
            for srv in self._servers:
                srv.close()
            for s in self.clients():
                for ctx in list(s.contexts.values()):
                    ctx.request_cancel("daemon stopping")
                for task in list(s.tasks.values()):
                    task.cancel()
                s.abort()
            if watcher is not None:
                await watcher.stop()
            try:
                await asyncio.wait_for(self.service.engine.unload("daemon stopping"), 10)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                log.exception("engine did not unload cleanly")
            self.service.engine.shutdown()
            self.service.similarity.shutdown()
            self.cpu_pool.shutdown(wait=False, cancel_futures=True)
            self._remove_own_files()
        return self._stop_reason

    def _remove_own_files(self) -> None:
        try:
            st = os.stat(self.paths.socket)
            if (st.st_dev, st.st_ino) == self._socket_ino:
                os.unlink(self.paths.socket)
        except OSError:
            pass
        try:
            os.unlink(self.paths.info)
        except OSError:
            pass

    async def _housekeeping(self) -> None:
        """Idle unload, idle exit, and noticing that our socket file was deleted."""
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)
            try:
                st = os.stat(self.paths.socket)
                gone = (st.st_dev, st.st_ino) != self._socket_ino
            except OSError:
                gone = True
            if gone:  # the runtime dir was cleaned (logout, tmp cleaner): no client can reach us; make room
                self.request_stop(f"socket {self.paths.socket} was removed")
                return
            s = self.settings
            if s.idle_unload_s and self.service.engine.idle_for() > s.idle_unload_s and self.service.engine.loaded:
                await self.service.engine.unload(f"idle for {s.idle_unload_s:g} s")
            if self.sessions:
                self.last_client_seen = time.monotonic()
            elif s.idle_exit_s and time.monotonic() - self.last_client_seen > s.idle_exit_s:
                self.request_stop(f"no clients for {s.idle_exit_s:g} s")
                return

    async def _on_disk_batch(self, root_path: str, paths: set[str], rescan: bool) -> None:
        root = self.service.roots.by_path.get(root_path)
        if root is None:
            return
        changed, rescan = await self.run_cpu(root.apply_disk_changes, paths, rescan)
        if changed:
            log.info("%s: %d files changed on disk%s", root_path, len(changed), " (rescanned)" if rescan else "")
            self.notify_root(root, INDEX_CHANGED, {"root": root_path, "paths": changed, "reason": "disk",
                                                   "rescan": rescan})

    # -- one connection ---------------------------------------------------
    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: str) -> None:
        """A connection over ``max_connections``: one error frame, then closed; at most 64 KiB is read (and dropped)."""
        limit = self.settings.max_connections
        log.warning("refused a %s connection: %d clients already connected there (max_connections)", transport, limit)
        try:
            writer.write(rpc.encode(error(None, DaemonError(
                TOO_MANY_CONNECTIONS, f"the daemon already has {limit} {transport} connections (max_connections); "
                "close some clients or raise max_connections"))))
            await asyncio.wait_for(writer.drain(), 1.0)
            # Half-close and let the client read the error before the socket goes: closing with its
            # handshake still unread would reset the connection and lose the error frame.
            if writer.can_write_eof():
                writer.write_eof()
            async with asyncio.timeout(1.0):
                left = PRE_HANDSHAKE_MAX_BYTES
                while left > 0 and (chunk := await reader.read(left)):
                    left -= len(chunk)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.transport.abort()

    def _handshake_expired(self, session: ClientSession) -> None:
        if not session.handshaken and not session.closed:
            session.expired = True
            log.warning("client %d sent no handshake within %g s; closing it", session.id,
                        self.settings.handshake_timeout_s)
            session.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: str) -> None:
        if sum(1 for s in self.sessions.values() if s.transport == transport) >= self.settings.max_connections:
            await self._refuse(reader, writer, transport)
            return
        session = ClientSession(self, reader, writer, transport)
        self.sessions[session.id] = session
        log.info("client %d connected (%s)", session.id, transport)
        why = "closed by client"
        # Until the handshake is answered a connection is a stranger: small frames only, none skipped,
        # and only handshake_timeout_s to say who it is.
        expire = self.loop.call_later(self.settings.handshake_timeout_s, self._handshake_expired, session)
        try:
            while not session.closed:
                try:
                    if session.handshaken:
                        msg = await rpc.read_frame(reader, self.settings.max_message_bytes)
                    else:
                        msg = await rpc.read_frame(reader, min(PRE_HANDSHAKE_MAX_BYTES, self.settings.max_message_bytes),
                                                   discard_limit=0)
                except rpc.FrameTooLarge as e:
                    await session.send(error(None, e))
                    if not e.discarded:
                        why = (f"frame of {e.data['size']} bytes, too large to skip" if session.handshaken
                               else f"frame of {e.data['size']} bytes before the handshake")
                        break
                    continue
                except rpc.MalformedFrame as e:
                    await session.send(error(None, e))
                    continue
                except (asyncio.IncompleteReadError, ConnectionError, OSError):
                    why = "connection lost"
                    break
                if msg is None:
                    break
                task = self._dispatch(session, msg)
                if task is not None and not session.handshaken and msg.get("method") == "handshake":
                    # Read nothing more until the handshake is answered: the next frame's limit depends on it.
                    await asyncio.wait([task])
        except asyncio.CancelledError:
            why = "daemon stopping"
        finally:
            expire.cancel()
            if session.expired:
                why = f"no handshake within {self.settings.handshake_timeout_s:g} s"
            session.closed = True
            self.sessions.pop(session.id, None)
            self.last_client_seen = time.monotonic()
            for ctx in list(session.contexts.values()):
                ctx.request_cancel("client disconnected")
            for task in list(session.tasks.values()):
                task.cancel()
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass
            log.info("client %d gone (%s)", session.id, why)
            try:
                await self.service.client_gone(session)
            except asyncio.CancelledError:  # the daemon is stopping: nothing left to clean up for
                pass
            except Exception:  # noqa: BLE001
                log.exception("cleaning up after client %d", session.id)

    def _dispatch(self, session: ClientSession, msg: Any) -> asyncio.Task | None:
        """Start answering one message; returns the request's task (None for anything else)."""
        try:
            parsed = parse_message(msg)
        except DaemonError as e:
            rid = e.data.get("id") if isinstance(e.data, dict) else None
            self.loop.create_task(session.send(error(rid, e)))
            return None
        if isinstance(parsed, Response):
            return None  # the daemon sends no requests, so answers are ignored
        if isinstance(parsed, Notification):
            if parsed.method == "cancel":  # also accepted as a notification, like LSP's $/cancelRequest
                session.cancel_request(parsed.params.get("id"))
            return None
        req: Request = parsed
        if len(session.tasks) >= MAX_IN_FLIGHT and req.method != "cancel":  # a runaway client cannot starve others
            self.loop.create_task(session.send(error(req.id, DaemonError(
                INVALID_REQUEST, f"too many requests in flight on this connection (limit {MAX_IN_FLIGHT})"))))
            return None
        if req.id in session.tasks:
            self.loop.create_task(session.send(error(req.id, DaemonError(INVALID_REQUEST, f"request id {req.id!r} is already in use"))))
            return None
        ctx = Context(session, req.id)
        session.contexts[req.id] = ctx
        task = self.loop.create_task(self._run_request(session, req, ctx), name=f"client{session.id}:{req.method}:{req.id}")
        session.tasks[req.id] = task
        return task

    async def _run_request(self, session: ClientSession, req: Request, ctx: Context) -> None:
        try:
            answer = await self._answer(session, req, ctx)
        finally:
            session.tasks.pop(req.id, None)
            session.contexts.pop(req.id, None)
        await session.send(answer)

    async def _answer(self, session: ClientSession, req: Request, ctx: Context) -> dict:
        if not session.handshaken and req.method not in ALWAYS_ALLOWED:  # names no method to a stranger
            return error(req.id, DaemonError(INVALID_REQUEST, "send 'handshake' first"))
        handler = self.service.methods.get(req.method)
        if handler is None:
            return error(req.id, DaemonError(METHOD_NOT_FOUND, f"unknown method {req.method!r}",
                                             {"methods": sorted(self.service.methods)}))
        if self._stop.is_set() and req.method != "shutdown":
            return error(req.id, DaemonError(SHUTTING_DOWN, "the daemon is shutting down"))
        limit = self.service.deadline_for(req.method, req.params, self.settings.request_deadline_s)
        if req.deadline_ms is not None:
            limit = min(limit, req.deadline_ms / 1000)
        ctx.deadline_at = time.monotonic() + limit
        try:
            async with asyncio.timeout(limit):  # runs the handler in this task: no extra task per request
                value = await handler(ctx, req.params)
            return result(req.id, value)
        except DaemonError as e:
            return error(req.id, e)
        except asyncio.TimeoutError:
            ctx.request_cancel("deadline exceeded")
            return error(req.id, DaemonError(DEADLINE_EXCEEDED, f"{req.method} did not finish within {limit:g} s"))
        except asyncio.CancelledError:
            if session.closed:
                raise
            return error(req.id, DaemonError(CANCELLED, f"{req.method} was cancelled"))
        except Exception as e:  # noqa: BLE001 - a bug in one method answers an error; the daemon stays up
            log.exception("%s failed", req.method)
            return error(req.id, DaemonError(INTERNAL_ERROR, f"{req.method} failed: {type(e).__name__}: {e}"))


def run_foreground(settings: DaemonSettings, runtime_dir: str | None = None, log_to_stderr: bool = True) -> int:
    """``storytransformer daemon run``: serve until stopped. Exit 0 also when another daemon already serves."""
    try:
        paths = Paths.resolve(runtime_dir)
        ensure_private_dir(paths.dir)
    except RuntimeDirError as e:
        print(f"storytransformer daemon: {e}", file=sys.stderr)
        return 2
    lock = InstanceLock(paths.lock)
    if not lock.acquire():
        info = read_info(paths) or {}
        if socket_answers(paths.socket):
            print(f"storytransformer daemon: already running (pid {info.get('pid', '?')}, socket {paths.socket})",
                  file=sys.stderr)
            return 0
        print(f"storytransformer daemon: another daemon holds {paths.lock} but does not answer on {paths.socket}; "
              "it may be starting or stuck", file=sys.stderr)
        return 0
    try:
        if remove_stale_socket(paths.socket):
            print(f"storytransformer daemon: removed a stale socket left by a daemon that died ({paths.socket})",
                  file=sys.stderr)
        log_file = setup_logging(settings.log_level, to_stderr=log_to_stderr)
        log.info("starting daemon pid %d (runtime dir %s, log %s)", os.getpid(), paths.dir, log_file)
        reason = asyncio.run(DaemonServer(settings, paths).run())
        log.info("daemon stopped: %s", reason)
        busy = [t.name for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon and t.is_alive()]
        if busy:  # a model call or a reload that cannot be interrupted: the socket is gone, do not wait for it
            log.warning("exiting without waiting for %s", ", ".join(busy))
            logging.shutdown()
            lock.release()
            os._exit(0)
        return 0
    except (RuntimeDirError, StartupError) as e:
        print(f"storytransformer daemon: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"storytransformer daemon: cannot listen on {paths.socket}: {e.strerror or e}", file=sys.stderr)
        return 2
    finally:
        lock.release()

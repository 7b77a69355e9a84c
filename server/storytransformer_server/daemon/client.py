"""Talking to the daemon: :class:`DaemonClient` (asyncio) and :func:`call` (blocking, for the CLI).

The language server codes against this interface::

    client = await DaemonClient.connect(spawn=True)          # starts the daemon when none runs
    client.on_notification("index/changed", on_change)        # callback(params), sync or async
    client.on_disconnect(on_lost)                             # callback(reason)
    found = await client.request("findings", {"path": p}, timeout=5)   # raises DaemonError
    await client.close()

Every request has a deadline: on timeout the client sends ``cancel`` and
raises ``DaemonError(DEADLINE_EXCEEDED)``; cancelling the awaiting task also
cancels the request in the daemon. When the daemon dies, pending requests
fail at once with ``CONNECTION_LOST`` and ``on_disconnect`` callbacks run;
:func:`connect_with_backoff` reconnects (restarting the daemon).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import subprocess
import sys
from typing import Any, Awaitable, Callable, Sequence

from . import rpc
from .lifecycle import Paths, RuntimeDirError, log_dir
from .protocol import (CONNECTION_LOST, DAEMON_NOT_RUNNING, DEADLINE_EXCEEDED, DEFAULT_MAX_MESSAGE_BYTES,
                       MESSAGE_TOO_LARGE, PROTOCOL_VERSION, DaemonError, Notification, Response, notification,
                       parse_message, request)

log = logging.getLogger(__name__)

Callback = Callable[[Any], Awaitable[None] | None]


def daemon_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "storytransformer", "daemon", *args]


def _env(runtime_dir: str | os.PathLike | None) -> dict:
    env = dict(os.environ)
    if runtime_dir:
        env["STORYTRANSFORMER_RUNTIME_DIR"] = os.fspath(runtime_dir)
    return env


def spawn_detached(runtime_dir: str | os.PathLike | None = None, extra: list[str] | None = None) -> subprocess.Popen:
    """Start ``daemon run`` in its own session, cut off from our terminal; its stderr goes to a file."""
    d = log_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(d / "daemon.stderr", "ab") as err:
        return subprocess.Popen(daemon_command("run", "--quiet", *(extra or [])), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True, close_fds=True,
                                env=_env(runtime_dir))


class DaemonClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._handlers: dict[str, list[Callback]] = {}
        self._on_disconnect: list[Callback] = []
        self._write_lock = asyncio.Lock()
        self.max_message_bytes = max_message_bytes
        self.server_info: dict = {}
        self.closed = False
        self.close_reason = ""
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop(), name="daemon-client-reader")

    # -- connecting -------------------------------------------------------
    @classmethod
    async def connect(cls, spawn: bool = True, runtime_dir: str | os.PathLike | None = None, *,
                      client_name: str = "", timeout: float = 5.0, spawn_timeout: float = 30.0,
                      start_flags: Sequence[str] = ()) -> "DaemonClient":
        """Connect to the user's daemon (starting it, detached, when ``spawn`` and none answers) and handshake.
        ``start_flags``: settings flags of ``daemon start`` (``--idle-unload 5``) for a daemon started here."""
        try:
            paths = Paths.resolve(runtime_dir)
        except RuntimeDirError as e:
            raise DaemonError(DAEMON_NOT_RUNNING, str(e)) from None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(os.fspath(paths.socket), limit=2 ** 16), timeout)
        except (OSError, asyncio.TimeoutError) as first:
            if not spawn:
                raise DaemonError(DAEMON_NOT_RUNNING, f"no daemon answers on {paths.socket} ({first}); "
                                  "start one with: storytransformer daemon start") from None
            await cls._start(runtime_dir, spawn_timeout, start_flags)
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(os.fspath(paths.socket), limit=2 ** 16), timeout)
            except (OSError, asyncio.TimeoutError) as e:
                raise DaemonError(DAEMON_NOT_RUNNING, f"started the daemon but cannot connect to {paths.socket}: {e}") from None
        client = cls(reader, writer)
        await client._handshake(client_name, None, timeout)
        return client

    @classmethod
    async def connect_tcp(cls, host: str, port: int, token: str, *, client_name: str = "",
                          timeout: float = 5.0) -> "DaemonClient":
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=2 ** 16), timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise DaemonError(DAEMON_NOT_RUNNING, f"no daemon answers on {host}:{port} ({e})") from None
        client = cls(reader, writer)
        await client._handshake(client_name, token, timeout)
        return client

    @staticmethod
    async def _start(runtime_dir, spawn_timeout: float, start_flags: Sequence[str] = ()) -> None:
        """Run ``daemon start`` (which detaches the daemon and waits for its socket)."""
        proc = await asyncio.create_subprocess_exec(*daemon_command("start", "--wait", str(spawn_timeout), *start_flags),
                                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.PIPE, env=_env(runtime_dir))
        try:
            _, err = await asyncio.wait_for(proc.communicate(), spawn_timeout + 5)
        except asyncio.TimeoutError:
            proc.kill()
            raise DaemonError(DAEMON_NOT_RUNNING, f"the daemon did not start within {spawn_timeout:g} s") from None
        if proc.returncode != 0:
            raise DaemonError(DAEMON_NOT_RUNNING, "could not start the daemon: "
                              + (err.decode(errors="replace").strip() or f"exit code {proc.returncode}"))

    async def _handshake(self, client_name: str, token: str | None, timeout: float) -> None:
        params = {"protocol": list(PROTOCOL_VERSION), "client": client_name or os.path.basename(sys.argv[0] or "python"),
                  "pid": os.getpid()}
        if token is not None:
            params["token"] = token
        try:
            self.server_info = await self.request("handshake", params, timeout=timeout)
        except DaemonError:
            await self.close()
            raise
        self.max_message_bytes = int(self.server_info.get("max_message_bytes", self.max_message_bytes))

    # -- callbacks --------------------------------------------------------
    def on_notification(self, method: str, callback: Callback) -> None:
        """Call ``callback(params)`` for every ``method`` notification (``"*"``: every one, with (method, params))."""
        self._handlers.setdefault(method, []).append(callback)

    def on_disconnect(self, callback: Callback) -> None:
        """Call ``callback(reason)`` once when the connection ends (daemon died, stopped, or :meth:`close`)."""
        self._on_disconnect.append(callback)

    @staticmethod
    async def _invoke(cb: Callback, *args) -> None:
        try:
            out = cb(*args)
            if inspect.isawaitable(out):
                await out
        except Exception:  # noqa: BLE001 - a failing callback must not kill the reader
            log.exception("daemon client callback failed")

    # -- requests ---------------------------------------------------------
    async def _send(self, message: dict) -> None:
        if self.closed:
            raise DaemonError(CONNECTION_LOST, f"not connected to the daemon ({self.close_reason})")
        try:
            frame = rpc.encode(message, self.max_message_bytes)
        except rpc.FrameTooLarge as e:
            raise DaemonError(MESSAGE_TOO_LARGE, f"{message.get('method')}: {e.message}", e.data) from None
        async with self._write_lock:
            try:
                self._writer.write(frame)
                await self._writer.drain()
            except (ConnectionError, OSError) as e:
                self._lost(f"write failed: {e}")
                raise DaemonError(CONNECTION_LOST, f"lost the connection to the daemon: {e}") from None

    async def request(self, method: str, params: dict | None = None, timeout: float | None = 30.0) -> Any:
        """Send a request and await its result; raises :class:`DaemonError` with the daemon's code.

        ``timeout=None`` means the daemon's own deadline (``request_deadline_s``), never "forever".
        """
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        deadline_ms = max(1, int(timeout * 1000)) if timeout else None
        if timeout is None:  # the daemon's own deadline applies; ours is a safety net if it hangs
            timeout = float(self.server_info.get("request_deadline_s", 120.0)) + 5.0
        try:
            async with asyncio.timeout(timeout):  # also bounds the send: a daemon that stopped reading
                await self._send(request(rid, method, params, deadline_ms))
                return await fut
        except TimeoutError:
            await self._cancel_remote(rid)
            raise DaemonError(DEADLINE_EXCEEDED, f"{method} got no answer within {timeout:g} s") from None
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel_remote(rid))
            raise
        finally:
            self._pending.pop(rid, None)
            if fut.done() and not fut.cancelled():
                fut.exception()  # a send that failed also failed this future: mark it seen (no asyncio warning)

    async def _cancel_remote(self, rid: int) -> None:
        if not self.closed:
            try:
                await self._send(notification("cancel", {"id": rid}))
            except DaemonError:
                pass

    async def notify(self, method: str, params: dict | None = None) -> None:
        await self._send(notification(method, params))

    # -- the reader -------------------------------------------------------
    async def _read_loop(self) -> None:
        reason = "the daemon closed the connection"
        try:
            while True:
                try:
                    msg = await rpc.read_frame(self._reader, max(self.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES) * 4)
                except rpc.MalformedFrame as e:
                    log.warning("ignoring a malformed frame from the daemon: %s", e)
                    continue
                if msg is None:
                    break
                reason = "the daemon closed the connection"
                try:
                    parsed = parse_message(msg)
                except DaemonError as e:
                    log.warning("ignoring a bad message from the daemon: %s", e)
                    continue
                if isinstance(parsed, Response):
                    fut = self._pending.get(parsed.id)
                    if fut is not None and not fut.done():
                        if parsed.error is not None:
                            fut.set_exception(parsed.error)
                        else:
                            fut.set_result(parsed.result)
                    elif parsed.id is None and parsed.error is not None:
                        log.warning("daemon reported a transport error: %s", parsed.error)
                        reason = f"the daemon closed the connection: {parsed.error.message}"  # if it closes next
                elif isinstance(parsed, Notification):
                    for cb in self._handlers.get(parsed.method, ()):
                        await self._invoke(cb, parsed.params)
                    for cb in self._handlers.get("*", ()):
                        await self._invoke(cb, parsed.method, parsed.params)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as e:
            reason = f"connection to the daemon lost ({type(e).__name__})"
        except rpc.FrameTooLarge as e:
            reason = f"the daemon sent an oversized frame: {e.message}"
        except asyncio.CancelledError:
            reason = self.close_reason or "closed"
        finally:
            self._lost(reason)
            for cb in self._on_disconnect:
                await self._invoke(cb, reason)

    def _lost(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(DaemonError(CONNECTION_LOST, reason))
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001
            pass

    async def close(self) -> None:
        if not self.closed:
            self.close_reason = "closed by the client"
        self._lost(self.close_reason or "closed by the client")
        if not self._reader_task.done():
            self._reader_task.cancel()
        try:
            await self._reader_task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass

    async def wait_closed(self) -> str:
        try:
            await asyncio.shield(self._reader_task)
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass
        return self.close_reason

    async def __aenter__(self) -> "DaemonClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


async def connect_with_backoff(spawn: bool = True, runtime_dir: str | os.PathLike | None = None, *,
                               attempts: int = 6, first_delay: float = 0.2, max_delay: float = 5.0,
                               client_name: str = "") -> DaemonClient:
    """Connect, retrying with exponential backoff (0.2 s, 0.4 s, ... capped) — for reconnecting after a crash."""
    delay, last = first_delay, None
    for i in range(attempts):
        try:
            return await DaemonClient.connect(spawn=spawn, runtime_dir=runtime_dir, client_name=client_name)
        except DaemonError as e:
            last = e
            if i + 1 < attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)
    assert last is not None
    raise last


def call(method: str, params: dict | None = None, *, runtime_dir: str | os.PathLike | None = None,
         timeout: float = 10.0, spawn: bool = False) -> Any:
    """One blocking request (for the CLI): connect, ask, close."""

    async def go():
        client = await DaemonClient.connect(spawn=spawn, runtime_dir=runtime_dir, client_name="storytransformer-cli",
                                            timeout=timeout)
        try:
            return await client.request(method, params, timeout=timeout)
        finally:
            await client.close()

    return asyncio.run(go())


__all__ = ["DaemonClient", "DaemonError", "call", "connect_with_backoff", "spawn_detached"]

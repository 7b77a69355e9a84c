"""Reading LSP messages from stdin, robustly.

pygls' reader (``pygls.io_.run_async``) trusts the client's framing: a header
``Content-Length: 100000000000`` makes it allocate that much (MemoryError, the
server dies); a lower-case ``content-length``, LF-only headers, or a length
larger than the body leave it waiting forever for bytes that never come.

This reader keeps its own buffer and reads what is available (``read1``):

* header names in any case, lines ended by ``\\r\\n`` or ``\\n``;
* a length above :data:`MAX_MESSAGE_BYTES` is refused with a logged error and its
  body is skipped while looking for the next header: the server keeps serving;
* a body that is not JSON, or a length that does not match the body, is logged and
  the next message is found again by its ``Content-Length`` header. When the
  declared length is longer than the body and the next message has already come,
  the complete JSON value before that header is handled;
* the end of input in the middle of a message ends the server cleanly.

It is started through pygls' public :meth:`start_io` contract (stdin, stdout) by
:func:`serve_io`, which takes the place of ``LanguageServer.start_io``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from typing import Any, BinaryIO

from pygls.exceptions import JsonRpcException
from pygls.io_ import StdoutWriter

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # one LSP message; a 20 MB document in JSON is far below
MAX_HEADER_LINE = 8 * 1024
CHUNK = 1 << 16

# A Content-Length header anywhere in the stream (the start of the next message).
HEADER = re.compile(rb"content-length[ \t]*:[ \t]*(\d+)[ \t]*\r?\n", re.IGNORECASE)
OTHER_HEADER = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*[ \t]*:[^\r\n]*$")


class FrameReader:
    """Messages (bodies, as bytes) from a byte stream with LSP framing; ``None`` at the end of input."""

    def __init__(self, read_chunk, max_bytes: int = MAX_MESSAGE_BYTES):
        self._read_chunk = read_chunk  # async () -> bytes (b"" at end of input)
        self.max_bytes = max_bytes
        self.buf = bytearray()
        self.eof = False
        self.errors = 0

    async def _more(self) -> bool:
        if self.eof:
            return False
        data = await self._read_chunk()
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _error(self, message: str, *args) -> None:
        self.errors += 1
        log.error("LSP input: " + message, *args)

    async def next_body(self) -> bytes | None:
        while True:
            length = await self._headers()
            if length is None:
                return None
            if length > self.max_bytes:
                self._error("a message of %d bytes is larger than the %d-byte limit: skipped", length, self.max_bytes)
                continue  # its body (if it comes) is skipped while looking for the next header
            body = await self._body(length)
            if body is not None:
                return body
            if self.eof and not self.buf:
                return None

    async def _headers(self) -> int | None:
        """Find the next ``Content-Length`` header and read up to the empty line after the headers."""
        while True:
            m = HEADER.search(self.buf)
            if m is not None:
                digits, start, end = bytes(m.group(1)), m.start(), m.end()
                del m  # the match refers to the buffer, which changes next
                skipped = bytes(self.buf[:start])
                if skipped.strip():
                    self._error("%d bytes before a header skipped: %r", len(skipped), skipped[:80])
                del self.buf[:end]
                length = int(digits) if len(digits) <= 12 else self.max_bytes + 1
                if await self._rest_of_headers():
                    return length
                return None
            # Keep only what could be the start of a header split across reads.
            if len(self.buf) > MAX_HEADER_LINE:
                dropped = len(self.buf) - 64
                self._error("%d bytes without a Content-Length header skipped", dropped)
                del self.buf[:dropped]
            if not await self._more():
                if self.buf.strip():
                    self._error("input ended inside a header: %r", bytes(self.buf[:80]))
                self.buf.clear()
                return None

    async def _rest_of_headers(self) -> bool:
        """Skip other headers (Content-Type) up to the empty line. False at the end of input."""
        while True:
            if self.buf.lstrip(b" \t")[:1] in (b"{", b"["):
                log.warning("LSP input: no empty line after the headers; reading the body from here")
                return True
            nl = self.buf.find(b"\n")
            if nl < 0:
                if len(self.buf) > MAX_HEADER_LINE:
                    self._error("a header line longer than %d bytes", MAX_HEADER_LINE)
                    return True  # treat what follows as the body
                if not await self._more():
                    self._error("input ended inside the headers")
                    return False
                continue
            line = bytes(self.buf[:nl]).rstrip(b"\r")
            if not line:
                del self.buf[: nl + 1]
                return True
            if OTHER_HEADER.match(line):  # Content-Type, or a repeated Content-Length
                del self.buf[: nl + 1]
                continue
            log.warning("LSP input: no empty line after the headers; reading the body from here")
            return True

    async def _body(self, length: int) -> bytes | None:
        """The body of ``length`` bytes, or the complete message that is there when the length was wrong."""
        searched = 0  # the buffer is searched for a header once, not again at every read
        while True:
            if len(self.buf) >= length:
                body = bytes(self.buf[:length])
                # A header cannot occur in JSON (a string holds no raw line break, and the name is no JSON
                # token): if one does, the next message starts inside this one's declared length.
                m = HEADER.search(body)
                if m is not None:
                    return self._short(m.start(), length)
                del self.buf[:length]
                return body  # not JSON: handed on all the same, and answered as a parse error
            m = HEADER.search(self.buf, max(0, searched - 64))
            if m is not None:  # the next message has begun: this one was shorter than it said
                return self._short(m.start(), length)
            searched = len(self.buf)
            if not await self._more():
                if self.buf.strip():
                    self._error("input ended %d bytes into a %d-byte message: dropped", len(self.buf), length)
                self.buf.clear()
                return None

    def _short(self, end: int, length: int) -> bytes | None:
        body = bytes(self.buf[:end]).strip()
        del self.buf[:end]
        if _is_json(body):
            log.warning("LSP input: Content-Length %d but the message ends after %d bytes; handled", length, len(body))
            return body
        self._error("a message of %d bytes (declared %d) is not JSON: skipped (%r)", len(body), length, body[:80])
        return None


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


async def read_loop(stop_event: threading.Event, reader: FrameReader, protocol, error_handler=None) -> None:
    """pygls' main loop over our framing: each body goes to the protocol as pygls would give it."""
    while not stop_event.is_set():
        body = await reader.next_body()
        if body is None:
            log.info("end of input: stopping")
            break
        try:
            message = json.loads(body, object_hook=protocol.structure_message)
            protocol.handle_message(message)
        except Exception as exc:
            log.error("unable to handle a message: %s", exc, exc_info=not isinstance(exc, (ValueError, JsonRpcException)))
            if error_handler:
                error_handler(exc, JsonRpcException)


def serve_io(server: Any, stdin: BinaryIO, stdout: BinaryIO, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
    """``server.start_io(stdin, stdout)``, with :class:`FrameReader` reading stdin."""
    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(stdout))
    read1 = getattr(stdin, "read1", None)

    def read_chunk_blocking() -> bytes:
        return read1(CHUNK) if read1 is not None else stdin.read(1)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def read_chunk() -> bytes:
            return await loop.run_in_executor(server.thread_pool, read_chunk_blocking)

        await read_loop(server._stop_event, FrameReader(read_chunk, max_bytes), server.protocol,
                        server.report_server_error)

    try:
        asyncio.run(main())
    except BrokenPipeError:
        log.error("connection to the client is lost: shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()

"""Framing: one msgpack message per frame, behind a 4-byte big-endian length.

The length comes first so a reader can refuse an oversized message before
buffering it, and a malformed body never desynchronises the stream: the
next frame starts exactly where the length said.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import msgpack

from .protocol import DEFAULT_MAX_MESSAGE_BYTES, MESSAGE_TOO_LARGE, PARSE_ERROR, DaemonError

HEADER = struct.Struct(">I")
_DISCARD_CHUNK = 1 << 16


class FrameTooLarge(DaemonError):
    """The announced length exceeds the limit. ``discarded`` says whether the body was skipped."""

    def __init__(self, size: int, limit: int, discarded: bool):
        super().__init__(MESSAGE_TOO_LARGE, f"message of {size} bytes exceeds the limit of {limit} bytes",
                         {"size": size, "limit": limit})
        self.discarded = discarded


class MalformedFrame(DaemonError):
    """The frame's body is not valid msgpack; the stream itself is still in sync."""

    def __init__(self, why: str):
        super().__init__(PARSE_ERROR, f"frame is not valid msgpack: {why}")


class Packed:
    """A value already encoded as msgpack, spliced into a message as is.

    The findings of a file are encoded once per workspace generation and
    reused by every request that asks for them, instead of re-encoding
    the same few dozen nested maps each time.
    """

    __slots__ = ("data",)

    def __init__(self, value: Any):
        self.data = msgpack.packb(value, use_bin_type=True)


def _pack_map(obj: dict, out: bytearray, packer: msgpack.Packer) -> None:
    out += packer.pack_map_header(len(obj))
    for k, v in obj.items():
        out += packer.pack(k)
        if isinstance(v, Packed):
            out += v.data
        elif isinstance(v, dict) and k == "result":
            _pack_map(v, out, packer)
        else:
            out += packer.pack(v)


def pack(message: Any) -> bytes:
    """Encode a message; :class:`Packed` values directly in it or in its ``result`` map are spliced in."""
    if isinstance(message, dict):
        res = message.get("result")
        if any(isinstance(v, Packed) for v in message.values()) or (
                isinstance(res, dict) and any(isinstance(v, Packed) for v in res.values())):
            out = bytearray()
            _pack_map(message, out, msgpack.Packer(use_bin_type=True))
            return bytes(out)
    return msgpack.packb(message, use_bin_type=True)


def unpack(body: bytes) -> Any:
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError, TypeError) as e:
        raise MalformedFrame(str(e) or type(e).__name__) from None


def encode(message: Any, max_bytes: int | None = None) -> bytes:
    """A whole frame (header and body); raises :class:`FrameTooLarge` past ``max_bytes``."""
    body = pack(message)
    if max_bytes is not None and len(body) > max_bytes:
        raise FrameTooLarge(len(body), max_bytes, discarded=True)
    return HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                     discard_limit: int | None = None) -> Any:
    """The next message, or ``None`` at a clean end of stream.

    An oversized frame is read and thrown away in chunks (when no larger than
    ``discard_limit``, default 4x ``max_bytes``) so the connection stays
    usable; beyond that the caller should close the connection.
    Raises :class:`asyncio.IncompleteReadError` when the peer hangs up mid-frame.
    """
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise
    (size,) = HEADER.unpack(header)
    if size > max_bytes:
        limit = 4 * max_bytes if discard_limit is None else discard_limit
        if size > limit:
            raise FrameTooLarge(size, max_bytes, discarded=False)
        left = size
        while left:
            chunk = await reader.read(min(left, _DISCARD_CHUNK))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(chunk)
        raise FrameTooLarge(size, max_bytes, discarded=True)
    return unpack(await reader.readexactly(size))

"""The daemon's wire protocol: message shapes, error codes and the protocol version.

Messages are msgpack maps, JSON-RPC-like so they read well in logs:

* request       ``{"id": int|str, "method": str, "params": map, "deadline_ms"?: int}``
* response      ``{"id": ..., "result": any}`` or ``{"id": ..., "error": {"code", "message", "data"?}}``
* notification  ``{"method": str, "params": map}`` (no id, no answer)

The first request on a connection should be ``handshake``; the daemon
answers with its protocol version and refuses clients whose major version
differs (see :data:`PROTOCOL_VERSION`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: (major, minor). A client and a daemon talk when the majors are equal;
#: a minor bump only adds methods or optional fields.
PROTOCOL_VERSION = (1, 0)

# JSON-RPC 2.0 codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Our own codes (JSON-RPC reserves -32000..-32099 for servers; -32800 is LSP's "cancelled").
CANCELLED = -32800
DEADLINE_EXCEEDED = -32001
MESSAGE_TOO_LARGE = -32002
ENGINE_UNAVAILABLE = -32003
SIMILARITY_UNAVAILABLE = -32004
VERSION_MISMATCH = -32005
UNAUTHORIZED = -32006
SHUTTING_DOWN = -32007
NOT_FOUND = -32008  # a story, file or root the request names does not exist
ENGINE_ERROR = -32009  # the engine ran but could not do this (e.g. no grounded proposal)
TOO_MANY_CONNECTIONS = -32012  # the listener already has max_connections clients; sent, then closed
# Raised by the client only (never sent by the daemon).
CONNECTION_LOST = -32010
DAEMON_NOT_RUNNING = -32011

ERROR_NAMES = {
    PARSE_ERROR: "parse error",
    INVALID_REQUEST: "invalid request",
    METHOD_NOT_FOUND: "method not found",
    INVALID_PARAMS: "invalid params",
    INTERNAL_ERROR: "internal error",
    CANCELLED: "cancelled",
    DEADLINE_EXCEEDED: "deadline exceeded",
    MESSAGE_TOO_LARGE: "message too large",
    ENGINE_UNAVAILABLE: "engine unavailable",
    SIMILARITY_UNAVAILABLE: "similarity unavailable",
    VERSION_MISMATCH: "protocol version mismatch",
    UNAUTHORIZED: "unauthorized",
    SHUTTING_DOWN: "shutting down",
    NOT_FOUND: "not found",
    ENGINE_ERROR: "engine error",
    TOO_MANY_CONNECTIONS: "too many connections",
    CONNECTION_LOST: "connection lost",
    DAEMON_NOT_RUNNING: "daemon not running",
}

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Before a connection's handshake is answered its frames may be at most this large (a handshake
# is a few hundred bytes); the large limit above is for clients that proved who they are.
PRE_HANDSHAKE_MAX_BYTES = 64 * 1024
DEFAULT_MAX_CONNECTIONS = 64  # per listener (Unix socket, TCP)
DEFAULT_HANDSHAKE_TIMEOUT_S = 10.0

# Notifications the daemon sends.
INDEX_CHANGED = "index/changed"
PROGRESS = "progress"
ENGINE_STATE = "engine/state"


class DaemonError(Exception):
    """An error answer from the daemon (or a transport failure seen by the client)."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"{message} ({ERROR_NAMES.get(code, 'error')} {code})")
        self.code = code
        self.message = message
        self.data = data

    def to_wire(self) -> dict:
        err = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err

    @classmethod
    def from_wire(cls, err: Any) -> "DaemonError":
        if not isinstance(err, dict):
            return cls(INTERNAL_ERROR, f"malformed error object from daemon: {err!r}")
        return cls(int(err.get("code", INTERNAL_ERROR)), str(err.get("message", "")), err.get("data"))


@dataclass(frozen=True, slots=True)
class Request:
    id: int | str
    method: str
    params: dict
    deadline_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    method: str
    params: dict


@dataclass(frozen=True, slots=True)
class Response:
    id: int | str | None
    result: Any = None
    error: DaemonError | None = None


def request(id: int | str, method: str, params: dict | None = None, deadline_ms: int | None = None) -> dict:
    msg = {"id": id, "method": method, "params": params or {}}
    if deadline_ms is not None:
        msg["deadline_ms"] = int(deadline_ms)
    return msg


def notification(method: str, params: dict | None = None) -> dict:
    return {"method": method, "params": params or {}}


def result(id: int | str | None, value: Any) -> dict:
    return {"id": id, "result": value}


def error(id: int | str | None, err: DaemonError) -> dict:
    return {"id": id, "error": err.to_wire()}


def _valid_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and len(value) <= 128)


def parse_message(msg: Any) -> Request | Notification | Response:
    """Classify a decoded frame; raise :class:`DaemonError` (``INVALID_REQUEST``) naming what is wrong.

    The error's ``data`` carries the id when one could be read, so the
    sender still gets an answer to the request it is waiting for.
    """
    if not isinstance(msg, dict):
        raise DaemonError(INVALID_REQUEST, f"a message must be a map, not {type(msg).__name__}")
    has_id = "id" in msg
    if has_id and msg["id"] is None and "error" in msg and "method" not in msg:  # an error about no request
        return Response(None, None, DaemonError.from_wire(msg["error"]))
    if has_id and not _valid_id(msg["id"]):
        raise DaemonError(INVALID_REQUEST, "'id' must be an integer or a short string")
    if "method" in msg:
        method, params = msg["method"], msg.get("params", {})
        id_ = msg.get("id")
        if not isinstance(method, str) or not method:
            raise DaemonError(INVALID_REQUEST, "'method' must be a non-empty string", {"id": id_})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise DaemonError(INVALID_REQUEST, f"'params' of {method} must be a map", {"id": id_})
        if not has_id:
            return Notification(method, params)
        deadline = msg.get("deadline_ms")
        if deadline is not None and (not isinstance(deadline, int) or isinstance(deadline, bool) or deadline <= 0):
            raise DaemonError(INVALID_REQUEST, "'deadline_ms' must be a positive integer", {"id": id_})
        return Request(id_, method, params, deadline)
    if has_id and ("result" in msg or "error" in msg):
        err = msg.get("error")
        return Response(msg["id"], msg.get("result"), DaemonError.from_wire(err) if err is not None else None)
    raise DaemonError(INVALID_REQUEST, "a message needs 'method' (request, notification) or 'id' with 'result'/'error' (response)",
                      {"id": msg.get("id")} if has_id else None)


def version_compatible(theirs: Any) -> bool:
    return (isinstance(theirs, (list, tuple)) and len(theirs) >= 1 and isinstance(theirs[0], int)
            and theirs[0] == PROTOCOL_VERSION[0])

"""The StoryTransformer daemon: one long-lived process per user that owns the model, the
similarity index and the file watchers, serving every editor window over a local socket.

Clients use :class:`DaemonClient` (asyncio) or :func:`call` (blocking, for the CLI).
"""

from __future__ import annotations

from storytransformer import __version__  # noqa: F401 (the one version string; the handshake reports it)

from .protocol import PROTOCOL_VERSION, DaemonError

__all__ = ["DaemonClient", "DaemonError", "PROTOCOL_VERSION", "call"]


def __getattr__(name):  # the client is imported on first use: the protocol module stays light
    if name in ("DaemonClient", "call"):
        from . import client

        return getattr(client, name)
    raise AttributeError(name)

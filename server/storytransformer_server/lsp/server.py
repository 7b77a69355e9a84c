"""The language server's wiring: create the shared context, attach the features, register the handlers.
No feature logic here (the features live in their own modules and receive the context)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from lsprotocol import types

from . import (code_actions, commands, completion, config_reload, configuration, diagnostics, hover, ignore, inline,
               navigation, scan, semantic, stdio, story_tokens)
from .server_context import ServerContext

log = logging.getLogger(__name__)


async def _start_semantic(server: ServerContext, scanning: asyncio.Task) -> None:
    """Connect to the daemon as soon as the scan knows the workspace roots (its first step), so the daemon
    loads its embedding model and embeds the workspace while the scan checks it."""
    while not server.core.roots and not scanning.done():
        await asyncio.sleep(0.01)
    await server.semantic.start()


def create_server() -> ServerContext:
    server = ServerContext()
    server.diagnostics = diagnostics.Diagnostics(server)
    server.semantic = semantic.Semantic(server)
    server.config_reload = config_reload.ConfigReload(server)

    @server.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        server.init_settings = configuration.initial_settings(params.initialization_options)
        # In force at once (requests may come before the client answers workspace/configuration);
        # problems are reported once the client's own settings are in, by `initialized`.
        from storytransformer.rules import RULES

        server.options, _ = configuration.parse_options(server.init_settings, set(RULES))
        server.model.options = server.options.daemon

    @server.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        fetched = await configuration.fetch_client_settings(server)
        await configuration.apply_settings(server, configuration.merge_settings(server.init_settings, fetched))
        loop = asyncio.get_running_loop()
        server.watchers = loop.create_task(config_reload.register_watchers(server))  # never waits on the client
        scanning = loop.create_task(scan.scan_workspace(server))
        if server.semantic.wanted:
            # Semantic duplicates need the daemon's index: connect now (starting it when allowed), so the
            # daemon starts and embeds the workspace while the scan checks it, not after.
            loop.create_task(_start_semantic(server, scanning))
        await scanning
        server.send_engine_status(server.model.status)
        if server.options.daemon.enabled:
            loop.create_task(server.model.refresh_status(spawn=False))

    @server.feature(types.SHUTDOWN)
    async def shutdown(params: Any = None) -> None:
        server.shutdown_requested = True
        await server.model.close()

    @server.feature(types.EXIT)
    def exit_(params: Any = None) -> None:
        server.exit_requested = True  # pygls then stops the loop; serve() returns the code

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def folders_changed(params: types.DidChangeWorkspaceFoldersParams) -> None:
        await scan.scan_workspace(server)

    diagnostics.register(server)
    code_actions.register(server)
    inline.register(server)
    completion.register(server)
    hover.register(server)
    navigation.register(server)
    story_tokens.register(server)
    ignore.register(server)
    commands.register(server)
    configuration.register(server)
    return server


def serve(tcp: bool = False, host: str = "127.0.0.1", port: int = 2087) -> int:
    """Serve until the client says exit or its input ends; the exit code: 1 for an ``exit`` that no
    ``shutdown`` request came before (as the protocol asks), 0 otherwise."""
    server = create_server()
    if tcp:
        server.start_tcp(host, port)
    else:
        # The protocol gets its own copy of stdout; fd 1 then points at stderr, so a stray print
        # (ours, a library's, a C extension's) can never corrupt the LSP stream.
        protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        sys.stdout = sys.stderr
        # Our reader, not pygls': it survives bad framing (huge or wrong lengths, lower-case or LF-only headers).
        stdio.serve_io(server, stdin=sys.stdin.buffer, stdout=protocol_out)
    server.core.shutdown()
    return 1 if server.exit_requested and not server.shutdown_requested else 0

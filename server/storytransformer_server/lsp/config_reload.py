"""The project's configuration files, watched: ``pyproject.toml`` and ``.storytransformer.toml``.

At ``initialized`` the server asks the client to watch those names
(``client/registerCapability`` for ``workspace/didChangeWatchedFiles``) when the
client supports dynamic registration; clients that watch files on their own send
the same notification. When one changes, every folder's configuration is read
again through the core's loader (the same search and trust rules as at start).
A file with a bad value is named, with the setting, in ``window/showMessage``, and
that folder keeps its previous configuration. When any folder's configuration
changed, the workspace is read and checked again and the diagnostics of every file,
open documents included, are published anew.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from lsprotocol import types

from storytransformer.config import CONFIG_FILES

from . import scan

if TYPE_CHECKING:
    from .server_context import ServerContext

log = logging.getLogger(__name__)
REGISTRATION_ID = "storytransformer-config-files"
WATCHED = [f"**/{name}" for name in CONFIG_FILES]


def is_config_file(path: str) -> bool:
    return os.path.basename(path) in CONFIG_FILES


async def register_watchers(server: "ServerContext") -> bool:
    """Ask the client to watch the configuration files; False when it cannot register dynamically."""
    ws = server.client_capabilities.workspace
    watched = ws.did_change_watched_files if ws is not None else None
    if watched is None or not watched.dynamic_registration:
        return False
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern=g) for g in WATCHED])
    try:
        await server.client_register_capability_async(types.RegistrationParams(registrations=[types.Registration(
            id=REGISTRATION_ID, method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options)]))
    except Exception as e:  # noqa: BLE001 - the client refused: recheckWorkspace still reloads
        log.warning("could not register the configuration file watchers: %s", e)
        return False
    return True


class ConfigReload:
    """Reloads run one at a time, after the first scan."""

    def __init__(self, server: "ServerContext") -> None:
        self.server = server
        self._lock = asyncio.Lock()
        self.reloads = 0

    async def reload(self) -> bool:
        """Read every folder's configuration again; re-check the workspace when one changed. Returns whether
        the configuration in force changed."""
        server = self.server
        await server.diagnostics.scanned.wait()
        async with self._lock:
            core = server.core
            configs, errors = await core.run(core.read_configs, server.roots(), True)
            for error in errors:
                server.show(f"{error} (keeping the previous configuration)", types.MessageType.Error)
            if not core.configs_differ(configs):
                return False
            self.reloads += 1
            log.info("configuration changed: checking the workspace again")
            server.diagnostics.scanned.clear()
            await scan.scan_workspace(server, configs)
            return True

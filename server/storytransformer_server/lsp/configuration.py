"""Settings: ``initializationOptions`` at start, then ``workspace/configuration`` (section
``storytransformer``) at start and whenever the client says they changed.

A bad value is shown to the user with ``window/showMessage`` and replaced by its
default; the configuration file's errors (:class:`ConfigError`) are shown the
same way by the workspace scan, and the server goes on with the defaults.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from .options import parse_options

if TYPE_CHECKING:
    from .server import StoryServer

log = logging.getLogger(__name__)
SECTION = "storytransformer"


def _section(raw: Any) -> Any:
    """Clients send either the section itself or an object holding it."""
    if isinstance(raw, dict) and isinstance(raw.get(SECTION), dict):
        return raw[SECTION]
    return raw


def _merge(base: Any, top: Any) -> Any:
    if isinstance(base, dict) and isinstance(top, dict):
        out = dict(base)
        for k, v in top.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return top if top is not None else base


async def fetch_client_settings(server: "StoryServer") -> Any:
    """The ``storytransformer`` section from the client, or None when it cannot be asked."""
    ws = server.client_capabilities.workspace
    if ws is None or not ws.configuration:
        return None
    try:
        items = await server.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)]))
    except Exception as e:
        log.warning("workspace/configuration failed: %s", e)
        return None
    return items[0] if items else None


async def apply_settings(server: "StoryServer", raw: Any) -> None:
    """Validate ``raw``, report what is wrong, and make the new options take effect."""
    from storytransformer.rules import RULES

    options, errors = parse_options(_section(raw), set(RULES))
    for message in errors:
        server.show(message, types.MessageType.Warning)
    old = server.options
    server.options = options
    server.model.options = options.daemon
    if options.rules != old.rules and server.diagnostics.scanned.is_set():
        results = await server.core.run(server.core.reconfigure, options.rules)
        server.diagnostics.replace_all(results)


def register(server: "StoryServer") -> None:
    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        fetched = await fetch_client_settings(server)
        raw = _merge(server.init_settings, fetched if fetched is not None else _section(params.settings))
        await apply_settings(server, raw)


initial_settings = _section
merge_settings = _merge
__all__ = ["apply_settings", "fetch_client_settings", "parse_options", "register"]

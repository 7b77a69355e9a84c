"""Settings: ``initializationOptions`` at start, then ``workspace/configuration`` (section
``storytransformer``) at start and whenever the client says they changed.

A bad value is shown to the user with ``window/showMessage`` and replaced by its
default; the configuration file's errors (:class:`ConfigError`) are shown the
same way by the workspace scan, and the server goes on with the defaults.

After each scan, :func:`review_project_config` tells the user about configuration
files that were ignored (owned or writable by someone else) and, when the project's
file sets a remote model server or API-key variable the user has not trusted, asks
with ``window/showMessageRequest`` ("Trust" / "Ignore"). Until then those settings are
dropped by the core loader; the daemon reads the trust list at each model request,
so a "Trust" takes effect at the next one without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from .options import parse_options

if TYPE_CHECKING:
    from .server_context import ServerContext

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


async def fetch_client_settings(server: "ServerContext") -> Any:
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


async def apply_settings(server: "ServerContext", raw: Any) -> None:
    """Validate ``raw``, report what is wrong, and make the new options take effect."""
    from storytransformer.rules import RULES

    options, errors = parse_options(_section(raw), set(RULES))
    for message in errors:
        server.show(message, types.MessageType.Warning)
    old = server.options
    server.options = options
    server.model.options = options.daemon
    if options.rules != old.rules and server.diagnostics.scanned.is_set():
        # (a scan still running checks again with these rules when it ends: scan.scan_workspace)
        results = await server.core.run(server.core.reconfigure, options.rules)
        server.diagnostics.replace_all(results)


def register(server: "ServerContext") -> None:
    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        fetched = await fetch_client_settings(server)
        raw = _merge(server.init_settings, fetched if fetched is not None else _section(params.settings))
        await apply_settings(server, raw)


TRUST, IGNORE = "Trust", "Ignore"


def review_project_config(server: "ServerContext") -> None:
    """Show notes on ignored configuration files once, and ask once per file and values about untrusted
    remote-engine settings (in the background: the scan goes on)."""
    core = getattr(server, "core", None)
    shown: set = server.__dict__.setdefault("_config_notes_shown", set())
    for project in getattr(core, "projects", None) or []:
        _review(server, project.file_config, shown)


def _review(server: "ServerContext", cfg, shown: set) -> None:
    for note in getattr(cfg, "notes", None) or []:
        if note not in shown:
            shown.add(note)
            server.show(note, types.MessageType.Warning)
    origin = getattr(cfg, "remote_origin", None)
    if origin is None or origin.trusted or origin.digest in shown:
        return
    shown.add(origin.digest)
    try:
        from storytransformer import trust

        if trust.is_trusted(origin):  # trusted since the scan loaded it (another window, the CLI)
            return
    except ImportError:
        return
    task = asyncio.ensure_future(ask_trust(server, origin))
    server.__dict__.setdefault("_trust_tasks", set()).add(task)
    task.add_done_callback(server.__dict__["_trust_tasks"].discard)


def trust_question(origin) -> str:
    key = f" and the API key in ${origin.remote_api_key_env}" if origin.remote_api_key_env else ""
    return (f"{origin.config} asks to send your stories{key} to the model server {origin.remote_url}. "
            "These settings are ignored until you trust them. Trust them?")


async def ask_trust(server: "ServerContext", origin) -> bool:
    """``window/showMessageRequest`` with Trust / Ignore; Trust records the consent in the user's trust list."""
    from storytransformer import trust

    choice = None
    try:
        choice = await server.window_show_message_request_async(types.ShowMessageRequestParams(
            type=types.MessageType.Warning, message=trust_question(origin),
            actions=[types.MessageActionItem(title=TRUST), types.MessageActionItem(title=IGNORE)]))
    except Exception as e:  # noqa: BLE001 - a client that cannot ask: say how to trust it instead
        log.warning("window/showMessageRequest failed: %s", e)
    if choice is not None and getattr(choice, "title", None) == TRUST:
        try:
            where = trust.add(origin)
        except OSError as e:
            server.show(f"could not record the trust in {trust.trust_file()}: {e}", types.MessageType.Error)
            return False
        server.show(f"Trusted the remote model settings of {origin.config} (recorded in {where}).",
                    types.MessageType.Info)
        return True
    server.show(f"Remote model settings of {origin.config} ignored; the local model is used. To trust them: "
                f"`{origin.how_to_trust()}`.", types.MessageType.Warning)
    return False


initial_settings = _section
merge_settings = _merge
__all__ = ["apply_settings", "ask_trust", "fetch_client_settings", "parse_options", "register",
           "review_project_config"]

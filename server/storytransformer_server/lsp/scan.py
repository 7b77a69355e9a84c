"""The workspace scan: read every story file of the workspace folders and publish their findings in batches,
open documents first. Run at start, on "Re-check Workspace", when folders or the configuration change."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from . import configuration

if TYPE_CHECKING:
    from .server_context import ServerContext

log = logging.getLogger(__name__)

SCAN_BATCH = 10  # files checked per worker job during the workspace scan


async def scan_workspace(server: "ServerContext", configs: dict | None = None) -> None:
    """Load every story file of the workspace, then check it in batches (open documents first), showing
    results as they come; an edit made meanwhile is checked between two batches, not after the scan.
    ``configs`` (root -> Config): configurations already read (a reload), instead of reading them."""
    d = server.diagnostics
    async with server.progress("StoryTransformer", "reading the workspace") as report:
        try:
            d.scan_rules = server.options.rules
            result = await server.core.run(server.core.scan, server.roots(), d.scan_rules, False, configs)
        except Exception as e:
            log.exception("workspace scan failed")
            server.show(f"the workspace scan failed: {e}", types.MessageType.Error)
            d.scanned.set()
            return
        for error in result.config_errors:
            server.show(f"{error} (using the default configuration)", types.MessageType.Error)
        configuration.review_project_config(server)  # ignored config files; untrusted remote settings
        for problem in result.problems[:5]:
            log.warning("%s", problem)
        paths = sorted(result.paths, key=lambda p: p not in server.core.overlays)
        seen = set(paths) | {ff.path for ff in result.unreadable}
        for path in list(d.published):
            if path not in seen:
                d.forget(path)
        d.accept(result.unreadable)
        for i in range(0, len(paths), SCAN_BATCH):
            try:
                d.accept(await server.core.run(server.core.check_paths, paths[i:i + SCAN_BATCH], True))
            except Exception:
                log.exception("checking %s failed", ", ".join(paths[i:i + SCAN_BATCH]))
            done = min(i + SCAN_BATCH, len(paths))
            report(f"checked {done} of {len(paths)} files", int(100 * done / max(len(paths), 1)))
        await server.core.run(server.core.save_caches)
        while server.options.rules != d.scan_rules:  # the user changed a rule while the scan ran: the files
            d.scan_rules = server.options.rules  # shown before the change must not keep the old setting
            d.replace_all(await server.core.run(server.core.reconfigure, d.scan_rules))
    if d.pull:
        d.refresh_pull()
    log.info("workspace: %d stories in %d files", result.stories, len(paths))
    d.scanned.set()

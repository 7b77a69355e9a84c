"""The first diagnostics of a document opened while the workspace scan runs.

The full check of an opened document waits for two slow things: the core's worker
thread, busy reading the workspace (seconds for 10,000 stories), and the spaCy
parser that the atomicity rule (ST201) needs (about 3 s to load on 2 busy cores).
A user who opens a file should not stare at a clean buffer meanwhile, so the rules
that need neither are run on the document alone, on a thread of its own, with its
folder's configuration: every story-scope rule without a parser batch hook. The
full result (ST201, duplicates, the template) replaces it when it comes; nothing
is written to the core's workspace or caches.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from storytransformer.lint import Linter
from storytransformer.rules import PREPARE
from storytransformer.workspace import Workspace

from .documents import FileFindings, within_root

if TYPE_CHECKING:
    from storytransformer.config import Config

    from .documents import CoreState

log = logging.getLogger(__name__)


def folder_config(core: "CoreState", roots: list[str], path: str, rule_overrides: dict[str, str]) -> "Config":
    """The configuration the scan will use for ``path`` (its deepest folder's), with the editor's severities.
    Read here because the core's projects are not built yet while the scan starts."""
    configs, _ = core.read_configs(roots, keep_previous=False)
    best = None
    for root in configs:
        if within_root(path, root) and (best is None or len(root) > len(best)):
            best = root
    config = configs[best] if best is not None else next(iter(configs.values()))
    if rule_overrides:
        config = dataclasses.replace(config, severity={**config.severity, **rule_overrides})
    return config


def check_alone(path: str, version: int, text: str, config: "Config") -> FileFindings:
    """The findings of ``text`` that depend on each story alone (no parser, no other story)."""
    ws = Workspace(config)
    try:
        ws.set_text(path, text)
    except ValueError as e:  # e.g. a CSV without a story column: the full check says the same
        return FileFindings(path, version, (), str(e))
    linter = Linter(ws, use_disk_cache=False)
    linter.rules = [r for r in linter.rules if r.scope == "story" and r.code not in PREPARE]
    return FileFindings(path, version, tuple(linter.check_file(path)))

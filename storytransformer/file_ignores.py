"""``per-file-ignores``: rules turned off for the files a glob names, as ruff's setting of that name.

A project keeps one configuration for its whole tree, but an imported legacy backlog or a folder of
examples should not fail CI for rules the team has not applied there yet. The globs are matched against
the path relative to the configuration's directory, or against the file name alone when the glob has
no ``/``; a glob starting with ``!`` names every file it does not match. The codes are rule codes or
prefixes, as in ``ignore``. Applied where findings leave the linter and the semantic rules, never inside
their caches, so two files with the same text under different globs each get their own answer.
"""

from __future__ import annotations

import os
from fnmatch import fnmatch
from functools import lru_cache
from typing import Iterable

from .findings import Finding


def codes_ignored(config, path: str) -> frozenset[str]:
    """The rule codes ``config``'s per-file-ignores turn off for the file at ``path`` (empty when none)."""
    table = getattr(config, "per_file_ignores", None)
    if not table:
        return frozenset()
    return _codes(tuple((glob, tuple(codes)) for glob, codes in table.items()), str(config.root), path)


def without_ignored(findings: Iterable[Finding], config) -> list[Finding]:
    """``findings`` less those that per-file-ignores turns off for their file."""
    findings = list(findings)
    if not getattr(config, "per_file_ignores", None):
        return findings
    off: dict[str, frozenset[str]] = {}
    for f in findings:
        if f.file not in off:
            off[f.file] = codes_ignored(config, f.file)
    return [f for f in findings if f.code not in off[f.file]]


@lru_cache(maxsize=8192)
def _codes(table: tuple[tuple[str, tuple[str, ...]], ...], root: str, path: str) -> frozenset[str]:
    from .rules import RULES

    rel = _relative(path, root)
    name = os.path.basename(path)
    off: set[str] = set()
    for glob, codes in table:
        negated = glob.startswith("!")
        pattern = glob[1:] if negated else glob
        if _matches(rel, name, pattern) != negated:
            prefixes = tuple(c.upper() for c in codes)
            off.update(code for code in RULES if code.startswith(prefixes))
    return frozenset(off)


def _relative(path: str, root: str) -> str:
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    except ValueError:  # another drive on Windows
        return path.replace(os.sep, "/")
    return (path if rel.startswith("..") else rel).replace(os.sep, "/")


def _matches(rel: str, name: str, pattern: str) -> bool:
    from .workspace import matches_globs

    if "/" not in pattern:
        return fnmatch(name, pattern)
    return matches_globs(rel, [pattern.removeprefix("./")])

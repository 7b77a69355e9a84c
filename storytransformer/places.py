"""How a person finds a story: ``file:line``, the file relative to the workspace.

Messages, proposals and the report name stories this way, never by the internal ids the
readers make up (``backlog-142-fa99141a``) nor by absolute paths; a story's own id is added
only where its format gives one (``US-12 at backlog.md:4``).
"""

from __future__ import annotations

import os
from functools import lru_cache


def relative_path(path: str, root: str | None = None) -> str:
    """``path`` relative to the current directory when it is under it (the paths a user types, and the
    workspace folder an editor starts its server in), else relative to ``root`` (the project the
    configuration belongs to) when under that, else as given. A current directory that is the file
    system's root says nothing about the workspace and is skipped."""
    try:
        cwd = os.getcwd()
    except OSError:  # the current directory was removed
        cwd = None
    return _relative(path, root, cwd)


@lru_cache(maxsize=8192)
def _relative(path: str, root: str | None, cwd: str | None) -> str:
    for top in (cwd, root):
        if not top or os.path.dirname(top) == top:
            continue
        try:
            rel = os.path.relpath(path, top) if os.path.isabs(path) or top == cwd else \
                os.path.relpath(os.path.join(cwd or "", path), top)
        except ValueError:  # another drive (Windows)
            continue
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
            return rel
    return path


def place(file: str, line: int, root: str | None = None) -> str:
    """``file:line`` with a 0-based ``line`` shown 1-based."""
    return f"{relative_path(file, root)}:{line + 1}"


def story_place(story, root: str | None = None) -> str:
    """Where ``story`` is (``file:line``), with its own id first when its format gives one."""
    where = place(story.file, story.line, root)
    return f"{story.id} at {where}" if story.explicit_id and story.id else where


def story_at(where: str, stories):
    """The story at ``FILE:LINE`` (1-based line, any line of the story) among ``stories``, or None
    (also when ``where`` is not of that form)."""
    path, _, line = where.rpartition(":")
    if not path or not line.isdigit():
        return None
    target = os.path.realpath(path)
    for s in stories:
        if os.path.realpath(s.file) == target and s.range.start.line <= int(line) - 1 <= s.range.end.line:
            return s
    return None

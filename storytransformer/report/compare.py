"""What changed between two snapshots of a backlog's findings.

A finding is identified by (story id, rule code): story ids survive lines moving
(explicit ids like ``US-12``, or ids derived from the story text), so a story that
moved down the file keeps its findings "unchanged". Several findings with one key
(a rule reported twice on one story) are matched by count.

The old snapshot is any of: a previous report (HTML with the embedded JSON data),
the JSON data on its own, the output of ``storytransformer check --format json``,
or a directory (checked now, with the same configuration).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Iterable, Mapping

DATA_ELEMENT_ID = "storytransformer-report-data"
_DATA_BLOCK = re.compile(
    r'<script[^>]*\bid="' + DATA_ELEMENT_ID + r'"[^>]*>(.*?)</script>', re.DOTALL | re.IGNORECASE)


class SnapshotError(ValueError):
    """An old snapshot that cannot be read; the message names the file."""


def finding_key(f: Mapping) -> tuple[str, str]:
    return (str(f.get("story_id") or ""), str(f["code"]))


def read_snapshot(path: Path, check_directory: Callable[[Path], list[dict]] | None = None) -> list[dict]:
    """The finding dicts of an old snapshot at ``path`` (see the module docstring)."""
    if path.is_dir():
        if check_directory is None:
            raise SnapshotError(f"{path}: is a directory, and no checker was given")
        return check_directory(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SnapshotError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    return findings_of_text(text, str(path))


def data_of_html(text: str, name: str = "report"):
    """The JSON data embedded in a report page."""
    m = _DATA_BLOCK.search(text)
    if not m:
        raise SnapshotError(f"{name}: an HTML file without a StoryTransformer report's data block "
                            f'(<script id="{DATA_ELEMENT_ID}">)')
    return _json(m.group(1), name)


def _json(text: str, name: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SnapshotError(f"{name}: not JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None


def findings_of_text(text: str, name: str) -> list[dict]:
    data = data_of_html(text, name) if text.lstrip().startswith("<") else _json(text, name)
    if isinstance(data, dict) and isinstance(data.get("findings"), list):
        found = data["findings"]
    elif isinstance(data, list):
        found = data
    else:
        raise SnapshotError(f"{name}: expected a report's data or the output of 'check --format json' "
                            "(a list of findings)")
    for i, f in enumerate(found):
        if not isinstance(f, dict) or "code" not in f or "story_id" not in f:
            raise SnapshotError(f"{name}: finding {i + 1} has no 'code' and 'story_id'")
    return found


def compare(old: Iterable[Mapping], new: Iterable[Mapping]) -> dict:
    """``{"added": [...], "removed": [...], "unchanged": [...], "counts": {...}, "by_rule": [...]}``;
    added and unchanged findings come from ``new``, removed ones from ``old``."""
    old_by: dict[tuple, list] = defaultdict(list)
    for f in old:
        old_by[finding_key(f)].append(f)
    new_by: dict[tuple, list] = defaultdict(list)
    for f in new:
        new_by[finding_key(f)].append(f)
    added, removed, unchanged = [], [], []
    for key in sorted(set(old_by) | set(new_by)):
        o, n = old_by.get(key, []), new_by.get(key, [])
        same = min(len(o), len(n))
        unchanged += n[:same]
        added += n[same:]
        removed += o[same:]
    by_rule = Counter()
    for f in added:
        by_rule[f["code"]] += 1
    for f in removed:
        by_rule[f["code"]] -= 1
    rules = sorted({f["code"] for f in added + removed})
    return {
        "added": [_brief(f) for f in added],
        "removed": [_brief(f) for f in removed],
        "unchanged": [_brief(f) for f in unchanged],
        "counts": {"added": len(added), "removed": len(removed), "unchanged": len(unchanged),
                   "old_total": len(unchanged) + len(removed), "new_total": len(unchanged) + len(added)},
        "by_rule": [{"code": c, "added": sum(f["code"] == c for f in added),
                     "removed": sum(f["code"] == c for f in removed), "net": by_rule[c]} for c in rules],
    }


def _brief(f: Mapping) -> dict:
    return {k: f.get(k) for k in ("code", "story_id", "story_label", "severity", "file", "line", "message")}

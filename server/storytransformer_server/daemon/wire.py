"""Core objects <-> plain maps for the wire (msgpack has no dataclasses).

Field names follow the core dataclasses, so a client can rebuild them with
:func:`finding_from_wire` or read the maps directly.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import PurePath
from typing import Any

from storytransformer.findings import Finding, Fix, Related, Severity, TextEdit
from storytransformer.story import Position, Range, Story


def plain(value: Any) -> Any:
    """Anything built from dataclasses, enums, tuples, sets and paths -> msgpack-safe values."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Range):
        return range_to_wire(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, (int, str)) else k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return str(value)


def position_to_wire(p: Position) -> dict:
    return {"line": p.line, "character": p.character, "utf16": p.utf16}


def range_to_wire(r: Range) -> dict:
    return {"start": position_to_wire(r.start), "end": position_to_wire(r.end)}


def range_from_wire(d: dict) -> Range:
    s, e = d["start"], d["end"]
    return Range(Position(s["line"], s["character"], s.get("utf16", -1)), Position(e["line"], e["character"], e.get("utf16", -1)))


def finding_to_wire(f: Finding) -> dict:
    return {
        "code": f.code,
        "criterion": f.criterion,
        "severity": f.severity.value if isinstance(f.severity, enum.Enum) else str(f.severity),
        "message": f.message,
        "file": f.file,
        "range": range_to_wire(f.range),
        "story_id": f.story_id,
        "related": [{"file": r.file, "range": range_to_wire(r.range), "story_id": r.story_id, "message": r.message}
                    for r in f.related],
        "fix": None if f.fix is None else {
            "title": f.fix.title,
            "edits": [{"range": range_to_wire(e.range), "new_text": e.new_text} for e in f.fix.edits],
        },
        "data": plain(f.data),
    }


def finding_from_wire(d: dict) -> Finding:
    fix = d.get("fix")
    return Finding(
        d["code"], d["criterion"], Severity(d["severity"]), d["message"], d["file"], range_from_wire(d["range"]),
        d["story_id"],
        tuple(Related(r["file"], range_from_wire(r["range"]), r["story_id"], r.get("message", "")) for r in d.get("related", ())),
        None if not fix else Fix(fix["title"], tuple(TextEdit(range_from_wire(e["range"]), e["new_text"]) for e in fix["edits"])),
        d.get("data") or {},
    )


def story_to_wire(s: Story) -> dict:
    return {"id": s.id, "file": s.file, "text": s.text, "range": range_to_wire(s.range),
            "role": s.role.text if s.role else None, "means": s.means.text if s.means else None,
            "ends": s.ends.text if s.ends else None, "format": s.format}

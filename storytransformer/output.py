"""Findings as text (``file:line:col: CODE message``), JSON and SARIF 2.1.0.

The JSON schema is documented in docs/output.md and pinned by
docs/schema/findings.schema.json; other tools rely on it.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from .findings import Finding, Severity
from .rules import RULES
from .workspace import FileProblem

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note", Severity.HINT: "note"}


@lru_cache(maxsize=4096)
def display_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
        return path if rel.startswith("..") else rel
    except ValueError:
        return path


def _fix_text(f: Finding) -> str | None:
    """The replacement text of the story's main edit (the one that rewrites the story)."""
    if f.fix is None:
        return None
    return f.fix.edits[0].new_text


def finding_to_json(f: Finding) -> dict:
    r = f.range
    return {
        "code": f.code,
        "rule": RULES[f.code].name if f.code in RULES else f.code.lower(),
        "criterion": f.criterion,
        "severity": f.severity.value,
        "message": f.message,
        "file": display_path(f.file),
        "line": r.start.line + 1,
        "column": r.start.character + 1,
        "end_line": r.end.line + 1,
        "end_column": r.end.character + 1,
        "story_id": f.story_id,
        "related": [
            {"file": display_path(x.file), "line": x.range.start.line + 1, "column": x.range.start.character + 1,
             "story_id": x.story_id, "message": x.message}
            for x in f.related
        ],
        "fix": _fix_text(f),
        "fix_title": f.fix.title if f.fix else None,
        "edits": [
            {"line": e.range.start.line + 1, "column": e.range.start.character + 1,
             "end_line": e.range.end.line + 1, "end_column": e.range.end.character + 1, "new_text": e.new_text}
            for e in (f.fix.edits if f.fix else ())
        ],
    }


def to_json(findings: Iterable[Finding], indent: int | None = None) -> str:
    return json.dumps([finding_to_json(f) for f in findings], indent=indent, ensure_ascii=False)


def to_text(findings: list[Finding], problems: Iterable[FileProblem], color: bool = False) -> str:
    lines = []
    for f in findings:
        r = f.range.start
        fixable = " [*]" if f.fix else ""
        lines.append(f"{display_path(f.file)}:{r.line + 1}:{r.character + 1}: {f.code} {f.message}{fixable}")
    for p in problems:
        lines.append(f"{display_path(p.path)}{':' + str(p.line) if p.line else ''}: {p.kind}: {p.message}")
    return "\n".join(lines)


def summary(findings: list[Finding], files: int, stories: int, unreadable: int = 0) -> str:
    fixable = sum(1 for f in findings if f.fix)
    bad = f" {unreadable} file{'s' if unreadable != 1 else ''} could not be read." if unreadable else ""
    if not findings:
        return f"No problems in {stories} stories in {files} files.{bad}"
    tail = f" ({fixable} fixable with --fix)" if fixable else ""
    return f"Found {len(findings)} problems in {stories} stories in {files} files{tail}.{bad}"


def to_sarif(findings: list[Finding], problems: Iterable[FileProblem], version: str) -> str:
    used = sorted({f.code for f in findings})
    rules = []
    index = {}
    for i, code in enumerate(used):
        index[code] = i
        r = RULES.get(code)
        rules.append({
            "id": code,
            "name": r.name if r else code,
            "shortDescription": {"text": r.summary if r else code},
            "helpUri": r.url if r else None,
            "defaultConfiguration": {"level": SARIF_LEVEL[r.severity] if r else "warning"},
            "properties": {"criterion": r.criterion if r else "", "tags": ["user-story", r.criterion if r else ""]},
        })
    results = []
    for f in findings:
        result = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": SARIF_LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": [_location(f.file, f.range)],
            "partialFingerprints": {"storyId/v1": f"{f.story_id}:{f.code}"},
        }
        if f.related:
            result["relatedLocations"] = [
                {**_location(x.file, x.range), "id": i, "message": {"text": x.message or x.story_id}}
                for i, x in enumerate(f.related)
            ]
        if f.fix:
            result["fixes"] = [{
                "description": {"text": f.fix.title},
                "artifactChanges": [{
                    "artifactLocation": {"uri": _uri(f.file)},
                    "replacements": [{"deletedRegion": _region(e.range), "insertedContent": {"text": e.new_text}}
                                     for e in f.fix.edits],
                }],
            }]
        results.append(result)
    notifications = [
        {"level": "error" if p.kind == "error" else "note", "message": {"text": p.message},
         "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(p.path)}}}]}
        for p in problems
    ]
    run = {
        "tool": {"driver": {"name": "storytransformer", "version": version,
                            "informationUri": "https://github.com/storytransformer/storytransformer",
                            "rules": rules}},
        "columnKind": "unicodeCodePoints",
        "results": results,
        "invocations": [{"executionSuccessful": not any(p.kind == "error" for p in problems),
                         "toolExecutionNotifications": notifications}],
    }
    for r in rules:
        if r["helpUri"] is None:
            del r["helpUri"]
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2, ensure_ascii=False)


def _uri(path: str) -> str:
    p = display_path(path)
    return Path(p).as_posix() if not os.path.isabs(p) else Path(p).as_uri()


def _region(rng) -> dict:
    return {"startLine": rng.start.line + 1, "startColumn": rng.start.character + 1,
            "endLine": rng.end.line + 1, "endColumn": rng.end.character + 1}


def _location(path: str, rng) -> dict:
    return {"physicalLocation": {"artifactLocation": {"uri": _uri(path)}, "region": _region(rng)}}

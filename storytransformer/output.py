"""Findings as text (``file:line:col: CODE message``), JSON, SARIF 2.1.0 and GitHub annotations;
the diff and the list of fixes that ``check --diff`` and ``--show-fixes`` print.

The JSON schema is documented in docs/output.md and pinned by
docs/schema/findings.schema.json; other tools rely on it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

from .findings import Finding, Severity
from .places import relative_path
from .rules import RULES
from .workspace import FileProblem

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note", Severity.HINT: "note"}


def display_path(path: str) -> str:
    """``path`` relative to the current directory when it is under it (the paths a user typed)."""
    return relative_path(path)


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


def _finding_line(f: Finding) -> str:
    r = f.range.start
    return f"{display_path(f.file)}:{r.line + 1}:{r.character + 1}: {f.code} {f.message}{' [*]' if f.fix else ''}"


def _problem_line(p: FileProblem) -> str:
    return f"{display_path(p.path)}{':' + str(p.line) if p.line else ''}: {p.kind}: {p.message}"


def to_text(findings: list[Finding], problems: Iterable[FileProblem], color: bool = False) -> str:
    return "\n".join([*map(_finding_line, findings), *map(_problem_line, problems)])


FULL_WINDOW = 100  # characters of a long story shown around the problem in --format full


def _source_excerpt(line: str, start: int, end: int) -> tuple[str, str]:
    """The story line (cut to a window around [start, end) when long) and the carets under the range."""
    end = max(end, start + 1)
    left = max(0, min(start - 20, len(line) - FULL_WINDOW))
    right = min(len(line), max(end, left + FULL_WINDOW))
    shown = ("…" if left else "") + line[left:right] + ("…" if right < len(line) else "")
    pad = "".join("\t" if c == "\t" else " " for c in line[left:start]) + (" " if left else "")
    return shown, pad + "^" * max(1, min(end, right) - start)


def to_full(findings: list[Finding], problems: Iterable[FileProblem], texts: dict[str, str]) -> str:
    """Each finding with its story: the line, carets under the words concerned, the fix and the other stories
    (``--format full``; what ruff and compilers print for people reading a terminal)."""
    blocks = []
    lines_of: dict[str, list[str]] = {}
    for f in findings:
        r = f.range.start
        block = [_finding_line(f)]
        lines = lines_of.setdefault(f.file, texts.get(f.file, "").splitlines())
        if r.line < len(lines):
            line = lines[r.line]
            end = f.range.end.character if f.range.end.line == r.line else len(line)
            shown, carets = _source_excerpt(line, r.character, end)
            gutter = str(r.line + 1)
            block += [f"{' ' * len(gutter)} |", f"{gutter} | {shown}", f"{' ' * len(gutter)} | {carets}"]
        if f.fix:
            block.append(f"  = fix: {f.fix.title}")
        for rel in f.related[:3]:
            block.append(f"  = see: {display_path(rel.file)}:{rel.range.start.line + 1}")
        blocks.append("\n".join(block))
    return "\n\n".join([*blocks, *map(_problem_line, problems)])


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {'stories' if word == 'story' else word + 's'}"


def summary(findings: list[Finding], files: int, stories: int, unreadable: int = 0, baselined: int = 0) -> str:
    fixable = sum(1 for f in findings if f.fix)
    bad = f" {_n(unreadable, 'file')} could not be read." if unreadable else ""
    old = f" {baselined} more {'are' if baselined != 1 else 'is'} in the baseline." if baselined else ""
    new = "new " if baselined else ""
    where = f"{_n(stories, 'story')} in {_n(files, 'file')}"
    if not findings:
        return f"No {new}problems in {where}.{old}{bad}"
    tail = f" ({fixable} fixable with --fix)" if fixable else ""
    return f"Found {len(findings)} {new}problem{'' if len(findings) == 1 else 's'} in {where}{tail}.{old}{bad}"


GITHUB_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice", Severity.HINT: "notice"}


def github_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub's toolkit does (``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """A workflow command's property value (``escapeProperty``): also ``:`` and ``,``."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def to_github(findings: list[Finding], problems: Iterable[FileProblem]) -> str:
    """One workflow annotation per finding (``::warning file=...,line=...::message``) and per unusable file."""
    lines = []
    for f in findings:
        r = f.range
        props = {"file": display_path(f.file), "line": r.start.line + 1, "col": r.start.character + 1,
                 "endLine": r.end.line + 1, "endColumn": r.end.character + 1, "title": f.code}
        if r.end.line != r.start.line:  # GitHub ignores columns on an annotation over several lines
            del props["col"], props["endColumn"]
        prop = ",".join(f"{k}={github_property(str(v))}" for k, v in props.items())
        lines.append(f"::{GITHUB_LEVEL[f.severity]} {prop}::{github_data(f.message)}")
    for p in problems:
        prop = f"file={github_property(display_path(p.path))}" + (f",line={p.line}" if p.line else "")
        lines.append(f"::{'error' if p.kind == 'error' else 'notice'} {prop}::{github_data(p.message)}")
    return "\n".join(lines)


GITLAB_SEVERITY = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.INFO: "info", Severity.HINT: "info"}


def to_gitlab(findings: list[Finding], problems: Iterable[FileProblem]) -> str:
    """A GitLab Code Quality report (the ``codequality`` artifact of a merge request): one issue per
    finding and per unusable file. The fingerprint hashes the rule, file, story id (its text's hash for
    a story without an explicit id) and message without line numbers (it names other stories by
    file:line), so a story moved by an edit above it is the same issue in the next pipeline; repeats get
    a counter."""
    seen: Counter[str] = Counter()
    issues = []

    def fingerprint(*parts: str) -> str:
        key = "\0".join(parts)
        seen[key] += 1
        return hashlib.sha256(f"{key}\0{seen[key]}".encode()).hexdigest()

    for f in findings:
        path = display_path(f.file)
        issues.append({"type": "issue", "check_name": f.code, "description": f"{f.code} {f.message}",
                       "categories": ["Style"], "severity": GITLAB_SEVERITY[f.severity],
                       "fingerprint": fingerprint(f.code, path, f.story_id, re.sub(r":\d+", "", f.message)),
                       "location": {"path": path, "lines": {"begin": f.range.start.line + 1,
                                                            "end": f.range.end.line + 1}}})
    for p in problems:
        path = display_path(p.path)
        issues.append({"type": "issue", "check_name": f"storytransformer/{p.kind}", "description": p.message,
                       "categories": ["Bug Risk"], "severity": "major" if p.kind == "error" else "info",
                       "fingerprint": fingerprint(p.kind, path, p.message),
                       "location": {"path": path, "lines": {"begin": p.line or 1}}})
    return json.dumps(issues, indent=2, ensure_ascii=False)


# Characters XML 1.0 does not allow (control characters but tab and line breaks, lone surrogates, U+FFFE/F):
# a story pasted from a PDF may hold a form feed, which would make the whole report unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def to_junit(findings: list[Finding], problems: Iterable[FileProblem]) -> str:
    """A JUnit XML report for CI test views (Jenkins, GitLab, Azure Pipelines): one test suite per file,
    one failing test case per finding (named by its rule code, its class the file and line) and per
    unusable file. A clean run is an empty report, as ruff writes it."""
    from xml.etree import ElementTree as ET

    by_file: dict[str, list[tuple[str, str, str]]] = {}
    for f in findings:
        path = display_path(f.file)
        r = f.range.start
        by_file.setdefault(path, []).append(
            (f.code, f"{path}:{r.line + 1}:{r.character + 1}", _xml_text(f"{f.code} {f.message}")))
    for p in problems:
        path = display_path(p.path)
        by_file.setdefault(path, []).append(
            (f"storytransformer/{p.kind}", f"{path}:{p.line or 1}", _xml_text(p.message)))
    total = sum(len(v) for v in by_file.values())
    root = ET.Element("testsuites", name="storytransformer", tests=str(total), failures=str(total))
    for path, cases in by_file.items():
        suite = ET.SubElement(root, "testsuite", name=_xml_text(path), tests=str(len(cases)), failures=str(len(cases)))
        for name, where, message in cases:
            case = ET.SubElement(suite, "testcase", name=name, classname=_xml_text(where))
            ET.SubElement(case, "failure", message=message).text = f"{where}: {message}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def unified_diff(path: str, before: str, after: str) -> str:
    """``before`` -> ``after`` as a unified diff of the file ``path`` (empty when they are equal)."""
    name = display_path(path)
    out = []
    for line in difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                     fromfile=name, tofile=name):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def fixes_listing(applied: dict[str, list[tuple[str, str]]], would: bool = False) -> str:
    """The fixes applied (or that would be) per file: ``(code, title)`` pairs, counted."""
    total = sum(len(v) for v in applied.values())
    if not total:
        return "No fixes would be applied." if would else "No fixes applied."
    lines = [f"{'Would fix' if would else 'Fixed'} {total} problem{'s' if total != 1 else ''}:"]
    for path in sorted(applied):
        if not applied[path]:
            continue
        lines.append(f"- {display_path(path)}:")
        for (code, title), n in sorted(Counter(applied[path]).items()):
            lines.append(f"    {n} \u00d7 {code} ({title})")
    return "\n".join(lines)


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

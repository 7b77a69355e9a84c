"""Baselines: the findings a backlog already had, so CI fails only on new ones.

A finding is matched by what it is about, never by where it is: the story's
normalised text (lower case, words only, as story ids and the duplicate rules
compare stories), the rule code, and a key that tells two findings of one rule
on one story apart (the words concerned for ST301, ST304, ST701, ST702 and ST801, the message for the
others; empty for findings about other stories, such as duplicates, whose
message names the other stories' places). Moving a story, or editing another,
leaves its findings matched; editing the story itself makes them new. A finding
that was fixed leaves an entry that matches nothing, which is harmless.

Entries are counted: a story written three times with the same finding needs
three. The file is JSON, sorted and indented, so that a changed baseline diffs
line by line::

    {
      "findings": [
        {"code": "ST301", "count": 1, "key": "...", "story": "as a member i want ..."}
      ],
      "tool": "storytransformer",
      "version": 1
    }
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Callable, Iterable, Mapping

from .findings import Finding
from .formats import read_source
from .formats.base import normalise

VERSION = 1

Key = tuple[str, str, str]  # (story, code, key)


class BaselineError(ValueError):
    """A baseline file that cannot be used; ``str()`` names the file and says why."""


def message_key(f: Finding) -> str:
    """What tells apart two findings of one rule on one story."""
    term = f.data.get("term") if f.data else None
    if term:
        return normalise(str(term))
    if f.related:  # duplicates and relations name the other stories' files, lines and scores
        return ""
    return " ".join(f.message.split())


def story_lookup(texts: Mapping[str, str], config=None) -> Callable[[Finding], str]:
    """A function giving a finding's normalised story text, from the texts of the files checked."""
    stories: dict[str, list] = {}
    for path, text in texts.items():
        try:
            stories[path] = read_source(path, text, config).stories
        except ValueError:
            continue

    def text_of(f: Finding) -> str:
        in_file = stories.get(f.file, [])
        line = f.range.start.line
        here = [s for s in in_file if s.range.contains_line(line)] or [s for s in in_file if s.id == f.story_id]
        story = next((s for s in here if s.id == f.story_id), here[0] if here else None)
        return normalise(story.text) if story is not None else f.story_id

    return text_of


def keys(findings: Iterable[Finding], text_of: Callable[[Finding], str]) -> list[Key]:
    return [(text_of(f), f.code, message_key(f)) for f in findings]


def load(path: str) -> Counter[Key]:
    """The entries of the baseline at ``path``; :class:`BaselineError` naming it when unusable."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as e:
        raise BaselineError(f"{path}: cannot read the baseline: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BaselineError(f"{path}: not a baseline file (invalid JSON: {e})") from None
    if not isinstance(data, dict) or data.get("tool") != "storytransformer" or "version" not in data:
        raise BaselineError(f"{path}: not a storytransformer baseline (no 'tool' and 'version' fields); "
                            "write one with --write-baseline")
    if data["version"] != VERSION:
        raise BaselineError(f"{path}: baseline version {data['version']!r} is not supported (expected {VERSION}); "
                            "write it again with --write-baseline")
    entries = data.get("findings")
    if not isinstance(entries, list):
        raise BaselineError(f"{path}: 'findings' must be a list")
    out: Counter[Key] = Counter()
    for i, e in enumerate(entries):
        if not (isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("story", "code", "key"))
                and isinstance(e.get("count", 1), int) and e.get("count", 1) > 0):
            raise BaselineError(f"{path}: entry {i + 1} of 'findings' needs 'story', 'code' and 'key' "
                                "(strings) and a positive 'count'")
        out[(e["story"], e["code"], e["key"])] += e.get("count", 1)
    return out


def dumps(entries: Iterable[Key]) -> str:
    """The baseline file's text for ``entries`` (repeated entries are counted)."""
    counted = Counter(entries)
    findings = [{"code": code, "count": n, "key": key, "story": story}
                for (story, code, key), n in sorted(counted.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2]))]
    return json.dumps({"findings": findings, "tool": "storytransformer", "version": VERSION},
                      indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def new_findings(findings: list[Finding], entries: list[Key], baseline: Counter[Key]) -> list[Finding]:
    """The findings that the baseline does not hold (in order; beyond an entry's count, the later ones)."""
    left = Counter(baseline)
    out = []
    for f, key in zip(findings, entries):
        if left[key] > 0:
            left[key] -= 1
        else:
            out.append(f)
    return out

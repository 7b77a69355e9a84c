"""Gherkin ``.feature`` files: the narrative under ``Feature:`` is the story.

The narrative lines ("As a", "I want", "So that", "In order to") may come in
any order; scenario names become acceptance criteria; a tag such as ``@US-12``
above ``Feature:`` is the story's id. A feature with a description but no
narrative is still read, so the rules can say it is not a story.
"""

from __future__ import annotations

import re

from ..lines import split_lines
from ..parse import ENDS_MARKER, MEANS_MARKER, ROLE_MARKER, Segment
from ..story import SourceFile
from .base import EXPLICIT_ID, StoryBuilder, line_segment, parse_suppression

KEYWORD = re.compile(r"^\s*(Feature|Ability|Business Need|Background|Scenario Outline|Scenario Template|Scenario|Example|Rule|Examples|Scenarios)\s*:\s*(.*)$", re.IGNORECASE)
STEP = re.compile(r"^\s*(Given|When|Then|And|But|\*)\s", re.IGNORECASE)
TAG = re.compile(r"@([^\s@]+)")
ENDS_START = re.compile(r"^\s*(so\s+that|in\s+order\s+to|so\b)", re.IGNORECASE)


def _order(seg: Segment) -> int:
    if ROLE_MARKER.match(seg.text):
        return 0
    if ENDS_START.match(seg.text) and not MEANS_MARKER.match(seg.text):
        return 2
    return 1


def read_gherkin(path: str, text: str) -> SourceFile:
    lines = split_lines(text)
    builder = StoryBuilder(path, lines, "gherkin")
    source = SourceFile(path, lines, format="gherkin")
    tags: list[str] = []
    pending: frozenset[str] = frozenset()
    file_codes: set[str] = set()
    feature: dict | None = None
    features: list[dict] = []
    state = "none"  # "narrative" while in the feature description
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("#"):
            sup = parse_suppression(stripped)
            if sup:
                if sup[0]:
                    file_codes |= sup[1]
                else:
                    pending = pending | sup[1]
            continue
        if stripped.startswith("@"):
            tags.extend(TAG.findall(stripped))
            continue
        kw = KEYWORD.match(line)
        if kw:
            name = kw.group(1).lower()
            if name in ("feature", "ability", "business need"):
                sid = next((t for t in tags if EXPLICIT_ID.match(t + " x")), None)
                feature = {"segments": [], "criteria": [], "id": sid, "suppressed": pending}
                features.append(feature)
                state = "narrative"
                pending = frozenset()
            elif feature is not None:
                state = "scenarios"
                if name.startswith(("scenario", "example")) and name != "examples" and kw.group(2).strip():
                    feature["criteria"].append(kw.group(2).strip())
            tags = []
            continue
        if state == "narrative" and feature is not None and stripped and not STEP.match(line):
            feature["segments"].append(line_segment(i, line, 0))
    for feature in features:
        segments = sorted(feature["segments"], key=_order)
        # Keep only the narrative when there is one; free description text is not the story.
        narrative = [s for s in segments if ROLE_MARKER.match(s.text) or MEANS_MARKER.match(s.text)
                     or ENDS_START.match(s.text) or ENDS_MARKER.match(" " + s.text)]
        story = builder.build(narrative or segments[:1], story_id=feature["id"],
                              acceptance=tuple(feature["criteria"]), suppressed=feature["suppressed"])
        if story:
            source.stories.append(story)
    source.suppressed = frozenset(file_codes)
    return source

"""Recognise role, means and ends inside one story's text.

Readers hand over the story text as one or more *segments* (line, column,
text); this module finds the markers ("As a", "I want to", "so that" and their
usual variants, case-insensitively) and maps every offset back to exact file
positions. Readers differ only in how they find the story text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from .story import Part, Position, Range

ROLE_MARKER = re.compile(r"^\s*(as\s+(?:an?|the)?\b\s*)(?=\S)", re.IGNORECASE)
MEANS_MARKER = re.compile(
    r"\b(I|we)\s*(?:(?:only|also|really|just|still|then|therefore|\w+ly)\s+)?"
    r"(?P<verb>"
    r"want(?:\s+to)?|wish(?:\s+to)?|would\s+like(?:\s+to)?|['’]d\s+like(?:\s+to)?|"
    r"need(?:\s+to)?|can|could|am\s+able\s+to|['’]m\s+able\s+to|"
    r"(?:should|would|must|will)\s+be\s+able\s+to|should|must|"
    r"do\s+not\s+want(?:\s+to)?|don['’]t\s+want(?:\s+to)?|"
    r"expect(?:\s+to)?|prefer(?:\s+to)?|require|would"
    r")\b",
    re.IGNORECASE,
)
ENDS_MARKER = re.compile(
    r"(?:,\s*|\s+)(so\s+that|in\s+order\s+to|in\s+order\s+that|so\s+as\s+to|so(?=\s+(?:I|we|they|that|it|he|she|users?)\b))\b",
    re.IGNORECASE,
)
# The ends-first template: "In order to <ends>, as a <role>, I want <means>" and the writer's variant
# "To <ends>, I, as a <role>, want <means>" (the subject before the role, the verb after it).
ENDS_FIRST = re.compile(r"^\s*(in\s+order\s+to|in\s+order\s+that|so\s+that|to)\s+(?=\S)", re.IGNORECASE)
ROLE_AFTER_ENDS = re.compile(r",\s*(?:(?P<subject>I|we)\s*,\s*)?(?P<marker>as\s+(?:an?|the)\s+)(?=\S)", re.IGNORECASE)
MAX_ROLE_WORDS = 10  # "..., as a <role>, I want": a longer "role" is a clause that happens to say "as a"
VERB_AFTER_ROLE = re.compile(
    r"(?:,\s*|\s+)(?P<verb>want(?:\s+to)?|wish(?:\s+to)?|would\s+like(?:\s+to)?|need(?:\s+to)?|"
    r"(?:should|would|must|will)\s+be\s+able\s+to|am\s+able\s+to|expect(?:\s+to)?|prefer(?:\s+to)?|require)\b",
    re.IGNORECASE,
)
# A sentence ends at . ! ? followed by space and a capitalised word, unless the
# word before the full stop is an abbreviation ("e.g.", "i.e.", "etc.", "U.S.").
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z][a-z])")
ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "vs.", "mr.", "mrs.", "dr.", "no.", "approx.", "ca.", "cf.", "incl."}
TRIM = " \t,;:."


@dataclass(frozen=True, slots=True)
class Segment:
    line: int
    column: int
    text: str


class Locator:
    """Maps offsets in the joined text of some segments back to file positions."""

    def __init__(self, segments: list[Segment], line_texts: dict[int, str]):
        self.segments = segments
        self.line_texts = line_texts
        self.starts: list[int] = []
        offset = 0
        for seg in segments:
            self.starts.append(offset)
            offset += len(seg.text) + 1  # segments are joined by a newline
        self.text = "\n".join(s.text for s in segments)
        # The common case (one line, ASCII): columns in code points and UTF-16 are equal.
        self.simple = len(segments) == 1 and line_texts[segments[0].line].isascii()

    def position(self, offset: int) -> Position:
        if self.simple:
            seg = self.segments[0]
            col = seg.column + min(offset, len(seg.text))
            return Position(seg.line, col, col)
        i = max(0, bisect_right(self.starts, offset) - 1)
        seg = self.segments[i]
        col = seg.column + min(offset - self.starts[i], len(seg.text))
        return Position.in_line(seg.line, self.line_texts[seg.line], col)

    def range(self, start: int, end: int) -> Range:
        return Range(self.position(start), self.position(end))


@dataclass(frozen=True, slots=True)
class ParsedStory:
    role: Part | None
    means: Part | None
    ends: Part | None
    trailing: Part | None


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in TRIM + "\n":
        start += 1
    while end > start and text[end - 1] in TRIM + "\n":
        end -= 1
    return start, end


def first_sentence_end(text: str, start: int, end: int) -> int | None:
    """Offset where a second sentence starts within ``text[start:end]``, if any."""
    for m in SENTENCE_BREAK.finditer(text, start, end):
        before = text[start : m.start()].rsplit(None, 1)
        word = before[-1].lower() if before else ""
        if word in ABBREVIATIONS or re.fullmatch(r"(?:\w\.)+", word):
            continue
        return m.end()
    return None


def _part(loc: Locator, kind: str, s: int, e: int, ms: int, me: int) -> Part | None:
    text = loc.text
    s, e = _trimmed(text, s, e)
    if e <= s:
        return None
    marker = " ".join(text[ms:me].split())
    return Part(kind, text[s:e], loc.range(s, e), marker, loc.range(ms, me))


def _trailing(loc: Locator, anchor: int) -> tuple[int, Part | None]:
    """(where the story's first sentence ends, the sentences after it) from ``anchor`` on."""
    text, n = loc.text, len(loc.text)
    cut = first_sentence_end(text, anchor, n)
    if cut is None:
        return n, None
    ts, te = _trimmed(text, cut, n)
    return cut, (Part("trailing", text[ts:te], loc.range(ts, te), "", loc.range(ts, ts)) if te > ts else None)


def parse_ends_first(loc: Locator) -> ParsedStory | None:
    """The ends-first template ("In order to <ends>, as a <role>, I want <means>", "To <ends>, I, as a
    <role>, want <means>"), or None when the story is not written so."""
    text = loc.text
    lead = ENDS_FIRST.match(text)
    if lead is None:
        return None
    role_m = ROLE_AFTER_ENDS.search(text, lead.end())
    sentence_end = first_sentence_end(text, lead.end(), len(text))
    if role_m is None or (sentence_end is not None and role_m.start() >= sentence_end):
        return None
    verbs = VERB_AFTER_ROLE if role_m.group("subject") else MEANS_MARKER
    means_m = verbs.search(text, role_m.end())
    if means_m is None or (sentence_end is not None and means_m.start() >= sentence_end) or \
            len(text[role_m.end():means_m.start()].split()) > MAX_ROLE_WORDS:
        return None
    body_end, trailing = _trailing(loc, means_m.end())
    ends = _part(loc, "ends", lead.end(), role_m.start(), lead.start(1), lead.end(1))
    role = _part(loc, "role", role_m.end("marker"), means_m.start(), role_m.start("marker"),
                 role_m.end("marker") - (len(role_m.group("marker")) - len(role_m.group("marker").rstrip())))
    verb_at = means_m.start("verb") if verbs is VERB_AFTER_ROLE else means_m.start()
    means = _part(loc, "means", means_m.end(), body_end, verb_at, means_m.end())
    if role is None or means is None or ends is None:
        return None
    return ParsedStory(role, means, ends, trailing)


def parse_parts(loc: Locator) -> ParsedStory:
    text = loc.text
    ends_first = parse_ends_first(loc)
    if ends_first is not None:
        return ends_first
    role_m = ROLE_MARKER.match(text)
    search_from = role_m.end() if role_m else 0
    means_m = MEANS_MARKER.search(text, search_from)
    first_ends = ENDS_MARKER.search(text, search_from)
    if means_m and first_ends and first_ends.start() < means_m.start():
        means_m = None  # "I can ..." inside the ends is not the means: this story has none
    ends_m = ENDS_MARKER.search(text, means_m.end()) if means_m else (first_ends if role_m else None)

    role = means = ends = None
    # Trailing sentences: after the first sentence that contains the means (or the whole story).
    body_end, trailing = _trailing(loc, ends_m.end() if ends_m else means_m.end() if means_m else search_from)
    if ends_m and ends_m.start() >= body_end:
        ends_m = None
    if means_m and means_m.start() >= body_end:
        means_m = None

    if role_m:
        role_end = means_m.start() if means_m else (ends_m.start() if ends_m else body_end)
        ms, me = role_m.start(1), role_m.end(1)
        while me > ms and text[me - 1].isspace():
            me -= 1
        role = _part(loc, "role", role_m.end(1), role_end, ms, me)
    if means_m:
        means_end = ends_m.start() if ends_m else body_end
        means = _part(loc, "means", means_m.end(), means_end, means_m.start(), means_m.end())
    if ends_m:
        ends = _part(loc, "ends", ends_m.end(), body_end, ends_m.start(1), ends_m.end(1))
    return ParsedStory(role, means, ends, trailing)

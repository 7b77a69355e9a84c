"""Minimal: a story holds the role, the means and the ends, and nothing else."""

from __future__ import annotations

import re

from ..findings import Finding, Fix, Severity
from ..fixes import move_to_note
from ..markers import repeated_ends_marker
from ..parse import MEANS_MARKER, first_sentence_end
from ..story import Position, Range, sub_range
from .registry import MAX_STORY_CHARS, Example, rule

CRITERION = "minimal"
BRACKETS = re.compile(r"\([^()]{1,300}\)|\[[^\[\]]{1,300}\]|\{[^{}]{1,300}\}")
# Brackets that are part of the wording, not an aside: "file(s)", "(optional)" kept? no: only plural markers.
# Words that cannot end a phrase: text in brackets right after one of them is part of the sentence.
DANGLING = frozenset("a an the of to in on at by for with from into onto about as or and nor but than via per "
                     "between like such including".split())
PLURAL = re.compile(r"^\((?:s|es|ies)\)$", re.IGNORECASE)


def _shortened(bracketed: str, limit: int = 60) -> str:
    """Bracketed text as a message quotes it: whole when short, else its start and its closing bracket
    ("(e.g. historical reports still published, expired ...)")."""
    if len(bracketed) <= limit:
        return bracketed
    text = " ".join(bracketed.split())
    cut = text[:limit - 5].rsplit(" ", 1)[0]
    return f"{cut} ...{text[-1]}"


@rule("ST301", "bracketed-text", CRITERION, Severity.WARNING,
      "Text in brackets is a note, not part of the story: move it out.", fixable=True,
      fix="Move the bracketed text into a note or the acceptance criteria (the quick fix does it).",
      examples=(Example("As a librarian, I want to add titles (see the old form).", flagged=True),
                Example("As a librarian, I want to add titles.", flagged=False),
                Example("As a user, I want to upload file(s).", flagged=False)))
def bracketed_text(story, ctx):
    for m in BRACKETS.finditer(story.text, 0, MAX_STORY_CHARS):  # a too-long story: its start (ST902)
        glued = (m.start() > 0 and story.text[m.start() - 1].isalnum()) or story.text[m.end():m.end() + 1].isalnum()
        if PLURAL.match(m.group(0)) or glued:
            continue  # "file(s)", "(re-)use", "function()": wording, not an aside
        start, end = m.start(), m.end()
        # "estimate with {0, 1, 2} or {0, 2, 4}": the brackets carry the sentence's own words, and moving
        # them out would leave "estimate with or". Reported, but split by hand.
        before = story.text[:start].split()
        integral = bool(before) and before[-1].lower().strip(",;:") in DANGLING
        fix = None if integral else move_to_note(story, start, end, ctx.lines_of(story), "Move the bracketed text into a note")
        yield Finding.on(story, "ST301", CRITERION, Severity.WARNING,
                         f"Not minimal: the bracketed text {_shortened(m.group(0))} is a note, not part of the story",
                         sub_range(story.text, story.range, start, end), fix=fix, data={"term": m.group(0)})


def _offset(story, part) -> int:
    """Offset of ``part`` inside ``story.text`` (single-line stories)."""
    return part.range.start.character - story.range.start.character


@rule("ST302", "extra-sentence", CRITERION, Severity.WARNING,
      "The story goes on after its last part with more sentences: keep them as notes or acceptance criteria.",
      fixable=True,
      fix="Keep the extra sentences as notes or acceptance criteria (the quick fix moves them).",
      examples=(Example("As a user, I want to log in, so that I see my loans. Use SSO.", flagged=True),
                Example("As a user, I want to log in, so that I see my loans.", flagged=False)))
def extra_sentence(story, ctx):
    if story.trailing is not None:
        start = _offset(story, story.trailing) if story.trailing.range.start.line == story.range.start.line else 0
        fix = move_to_note(story, start, len(story.text), ctx.lines_of(story), "Move the extra sentences into a note") if start else None
        yield Finding.on(story, "ST302", CRITERION, Severity.WARNING,
                         "Not minimal: more text follows the story; move it to a note or the acceptance criteria",
                         story.trailing.range, fix=fix)
        return
    means = story.means
    if means is not None:
        cut = first_sentence_end(means.text, 0, len(means.text))
        if cut is not None:
            yield Finding.on(story, "ST302", CRITERION, Severity.WARNING,
                             "Not minimal: the means holds more than one sentence; keep details in the acceptance criteria",
                             sub_range(means.text, means.range, cut, len(means.text)))


def _once_fix(ends, m: re.Match) -> Fix | None:
    """The ends marker written once: what lies between the marker and the rest of the ends (``m``, the
    repeated marker: "so that, so that we can" -> "so that we can"). None when the ends spans lines."""
    start, end = ends.marker_range.end, ends.range.start
    if start.line != end.line or ends.range.end.line != end.line:
        return None
    gone = Range(start, Position(end.line, end.character + m.end()))
    return Fix.replace("Write the ends marker once", gone, " ")


# A second ends clause inside the ends: "so that it is cited, so that I get credit", "so that I see it so I ask".
SECOND_ENDS = re.compile(r"(?i)\bso\s+that\b|\bso\s+(?:I|we)\b")


# The means marker again inside the means: "... and I want to create it as well", "... and I expect this to
# fail when ..." (an acceptance criterion written into the story).
SECOND_MEANS = re.compile(r"(?i)(?:,\s*|\s)(?:and|but)\s+((?:I|we)\s+(?:also\s+)?(?:want|need|expect|would\s+like|wish))\b")


@rule("ST303", "repeated-marker", CRITERION, Severity.WARNING,
      "A marker is written twice ('As a user, as a user', 'I want to I want to', 'so that so that').", fixable=True,
      fix="Write each marker once (the quick fix does it for a repeated 'so that').",
      examples=(Example("As a user, as a user, I want to log in.", flagged=True),
                Example("As a user, I want to log in, so that so that I see my loans.", flagged=True),
                Example("As a user, I want to log in.", flagged=False)))
def repeated_marker(story, ctx):
    role, means, ends = story.role, story.means, story.ends
    if ends is not None:
        m = repeated_ends_marker(ends.text) if re.fullmatch(r"(?i)so(?:\s+that)?", ends.marker.strip()) else None
        if m:
            said = " ".join(f"{ends.marker} {m.group(0)}".replace(",", " ").split())
            yield Finding.on(story, "ST303", CRITERION, Severity.WARNING,
                             f"Not minimal: the ends marker is repeated ('{said}'); write it once", ends.range,
                             fix=_once_fix(ends, m))
        elif SECOND_ENDS.search(ends.text, 1, MAX_STORY_CHARS):
            yield Finding.on(story, "ST303", CRITERION, Severity.WARNING,
                             "Not minimal: the ends holds a second 'so that' clause; keep one reason", ends.range)
    if role is not None and re.search(r"(?i)(?:^|,\s*)as\s+(?:an?|the)\b", role.text):
        yield Finding.on(story, "ST303", CRITERION, Severity.WARNING,
                         f"Not minimal: the role marker is repeated ('{role.marker} {role.text[:30]}')", role.range)
    if means is not None:
        m = MEANS_MARKER.match(means.text)
        if m and m.group(0).lower().split()[0] in ("i", "we"):
            yield Finding.on(story, "ST303", CRITERION, Severity.WARNING,
                             f"Not minimal: the means marker is repeated ('{means.marker} {m.group(0)}')", means.range)
        else:
            m = SECOND_MEANS.search(means.text, 1, MAX_STORY_CHARS)
            if m:
                said = " ".join(m.group(1).split())
                yield Finding.on(story, "ST303", CRITERION, Severity.WARNING,
                                 f"Not minimal: the means says '{said}' a second time; keep one need, and put "
                                 "what you expect in the acceptance criteria",
                                 sub_range(means.text, means.range, m.start(1), m.end(1)))


# Asides that add detail to the story instead of stating the need: examples, lists, dashes.
ASIDE = re.compile(r"(?i)\b(?:such\s+as|e\.\s?g\.|for\s+example|for\s+instance|i\.\s?e\.|namely|especially)(?=\W)"
                   r"|\bincluding\b(?=[^.;]{0,80}?(?:,(?!\s*so\b)|\band\b|\bor\b))"
                   r"|\b(?:things|stuff)\s+like\b"
                   r"|\s(?:-|--|\u2013|\u2014)\s"
                   r"|:\s+\S")


@rule("ST304", "aside", CRITERION, Severity.WARNING,
      "The story carries an aside (examples, 'such as', 'e.g.', a list after 'including' or a colon, a dash): "
      "keep such details in the acceptance criteria.",
      fix="Keep examples and lists in the acceptance criteria; state the need alone.",
      examples=(Example("As a user, I want to filter by fields such as date and author.", flagged=True),
                Example("As a user, I want to filter by field.", flagged=False)))
def aside(story, ctx):
    start = 0
    if story.role is not None and story.role.range.start.line == story.range.start.line:
        start = _offset(story, story.role)  # "As a user: ..." is the role, not an aside
    m = ASIDE.search(story.text, start, MAX_STORY_CHARS)
    if m and not (m.group(0).startswith(":") and story.means is not None
                  and m.start() < _offset(story, story.means)):
        start, end = m.start() + len(m.group(0)) - len(m.group(0).lstrip()), _aside_end(story.text, m)
        yield Finding.on(story, "ST304", CRITERION, Severity.WARNING,
                         f"Not minimal: '{_aside_quote(story.text, start, end)}' adds detail beyond the role, means "
                         "and ends; move it to the acceptance criteria",
                         sub_range(story.text, story.range, start, min(len(story.text), end)),
                         data={"term": story.text[start:end]})


ASIDE_WORDS = 4  # a colon or a dash is quoted with the words it starts (": Logo, title, trainers, ...")


def _aside_end(text: str, m: re.Match) -> int:
    """Where the quoted aside ends: the marker itself when it is words ("such as"); with the first
    words after it (not past the sentence or its "so that") when the marker is a colon or a dash,
    which alone says nothing ("': L'")."""
    if m.group(0).strip()[:1].isalpha():
        return m.end()
    rest = text[m.end() - 1:]
    stop = re.search(r"[.;]|,?\s+so\s+that\b", rest)
    rest = rest[:stop.start()] if stop else rest
    words = re.match(r"\s*(?:\S+\s+){0,%d}\S*" % (ASIDE_WORDS - 1), rest)
    return m.end() - 1 + len(words.group(0).rstrip(" ,"))


def _aside_quote(text: str, start: int, end: int) -> str:
    """The aside as the message quotes it, with "..." where its words go on."""
    quoted = text[start:end].strip()
    goes_on = re.match(r"[\s,]*[^\s.;,]", text[end:]) and not re.match(r",?\s+so\s+that\b", text[end:])
    return f"{quoted} ..." if goes_on and not quoted[:1].isalpha() else quoted

"""Deterministic fixes as pure functions from a story to text edits.

Every edit stays inside the story's own lines: a fix may replace the story's
text and insert new lines right after it (a split, a note), never touch others.
"""

from __future__ import annotations

import re

from .findings import Fix, TextEdit
from .injection import injection_reasons
from .markers import article_for, lead_role, means_with_subject, trailing_ends
from .nlp import ACTION_VERBS
from .story import Part, Position, Range, Story, sub_range

NOTE_PREFIX = {"text": "# Note: ", "gherkin": "# Note: "}


def line_prefix(story: Story, lines: list[str]) -> str:
    """What precedes the story on its first line (indentation, a list bullet), without an id."""
    line = lines[story.range.start.line] if story.range.start.line < len(lines) else ""
    prefix = line[: story.range.start.character]
    m = re.match(r"^(\s*(?:[-*+]|\d+[.)])?\s*(?:\[[ xX]\]\s*)?)", prefix)
    return m.group(1) if m else ""


def _end_of_line(story: Story, lines: list[str]) -> Position:
    line = story.range.end.line
    return Position.in_line(line, lines[line], len(lines[line]))


def replace_part(story: Story, part: Part, new: str) -> str:
    """The story's text with one part replaced (offsets from the story start; single-line stories)."""
    s = part.range.start.character - story.range.start.character
    e = part.range.end.character - story.range.start.character
    return story.text[:s] + new + story.text[e:]


def single_line(story: Story) -> bool:
    return story.range.start.line == story.range.end.line and "\n" not in story.text


# Words a means cannot end with: what is left when a split cuts an action from its object
# ("create and to maintain my apps" cut after "to").
DANGLING = frozenset("""
a an the and or nor but plus to of for with from by at as into onto via then also both either my our your their its
his her this that these those
""".split()) | {"&", "/", ",", "and/or"}


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'’-]+|[&/,]", text)


# Words a request cannot end on: a modal or auxiliary left from the next clause ("... and ALFRED should"),
# an adverb whose verb went to the other story ("... and only"). A part that ends on one is garbled.
CANNOT_END = frozenset("""
can could should would will must may might shall do does did is are was were be been have has had not only optionally
just even still
""".split())
# Prepositions whose object went with the other action ("identify myself as and pay for ..."): stripping
# one after a verb's own object would change the need ("search for and download X" shares X instead).
# "to" is not among them: "create and to maintain" only repeats the marker's.
LOST_COMPLEMENT = frozenset("of for with from by at as into onto via".split())
# Verbs that state a wish, not an action: "enable customers to need ..." is a second clause cut wrongly.
WISH_VERBS = frozenset("need needs want wants wish like would".split())
# A word that opens both parts of a split and belongs to the pair only: "either keep ... or share ...".
PAIR_WORDS = re.compile(r"(?i)^(?:either|both|neither)\s+")


def _strip_dangling(text: str) -> str | None:
    """``text`` without the joiners left at its end ("add and" -> "add"); None when what is left
    cannot end a request (a modal, an adverb) or a preposition lost its object."""
    text = text.strip()
    while True:
        m = re.search(r"(?:\s*(?:[\w'’/-]+|[&,]))$", text)
        word = m.group(0).strip().lower() if m else ""
        if word in LOST_COMPLEMENT:
            # "identify myself as" lost its complement; "search for" keeps its preposition for the object
            # that the next action shares ("search for and download X": "search for X").
            return None if len(_words(text[: m.start()])) >= 2 else text
        if not m or word not in DANGLING:
            text = text.rstrip(" ,")
            last = re.search(r"[\w'’-]+$", text)
            return None if last and last.group(0).lower() in CANNOT_END else text
        text = text[: m.start()].rstrip()


def _not_an_action(word: str) -> bool:
    """The first word of a split part that cannot follow 'I want to': a wish ('need'), an -ing or past
    form the tagger took for a verb ('finding aid data', 'remembered from', 'using a map')."""
    from .nlp import ACTION_VERBS

    w = word.lower()
    if w in WISH_VERBS:
        return True
    return w not in ACTION_VERBS and len(w) > 4 and w.endswith(("ing", "ed")) and w not in ("bring", "string", "embed")


# Particles of phrasal verbs: alone beside an action with an object, they leave it open whether the
# object is shared ("set up or delete accounts") or not ("sign up and become a member").
PARTICLES = frozenset("up down in out off on over back away".split())
# The direction an action takes its place with. Two actions joined over one place share a preposition
# that suits one of them ("add and remove people from groups"); each story of the split gets its own.
PREPOSITION_OF = {"add": "to", "attach": "to", "apply": "to", "assign": "to", "link": "to", "invite": "to",
                  "upload": "to", "move": "to", "copy": "to", "send": "to", "remove": "from", "detach": "from",
                  "unassign": "from", "unlink": "from", "download": "from", "exclude": "from", "withdraw": "from",
                  "import": "into"}
PLACE = re.compile(r"(?i)\b(?:(from|into)\b|(to)(?=\s+(?:a|an|the|my|our|your|their|its|this|that|these|those|all|each|"
                   r"every|any)\b))")  # "to" before a verb ("asked to do") is no place


def _each_with_its_preposition(parts: list[str], verbs: list[str]) -> list[str]:
    """``parts`` with the place's preposition of each suited to its own action, where the joined actions
    want different ones; a part with more than one place is left as written."""
    if len({PREPOSITION_OF[v] for v in verbs if v in PREPOSITION_OF}) < 2:
        return parts
    out = []
    for part, verb in zip(parts, verbs):
        places = list(PLACE.finditer(part))
        want = PREPOSITION_OF.get(verb)
        if want and len(places) == 1 and (places[0].group(1) or places[0].group(2)).lower() != want:
            part = part[: places[0].start()] + want + part[places[0].end():]
        out.append(part)
    return out


def complete_actions(means_parts: tuple[str, ...]) -> tuple[str, ...] | None:
    """The means of each story of a split, each a verb with its object; None when that cannot be
    done reliably.

    A part cut from its object ("easily create and to" beside "easily maintain my apps") gets the
    object of the last action, which the actions share ("easily create my apps"); a part that has no
    object and none to share ("create" / "share") gives no split at all.
    """
    from .nlp import ACTION_VERBS

    parts = [_strip_dangling(PAIR_WORDS.sub("", p.strip())) for p in means_parts]
    if len(parts) < 2 or any(not p for p in parts):
        return None
    words = [_words(p) for p in parts]
    # What every part starts with ("easily", "be able to") is shared, not the action, unless it
    # holds the verb itself ("add users" / "add groups").
    lead = 0
    while all(len(w) > lead for w in words) and len({w[lead].lower() for w in words}) == 1:
        lead += 1
    while lead and words[0][lead - 1].lower() in ACTION_VERBS:
        lead -= 1
    own = [w[lead:] for w in words]
    passive = lead and words[0][lead - 1].lower() in ("be", "been", "being", "get")  # "be notified and be emailed"
    if any(not mine or (_not_an_action(mine[0]) and not passive) for mine in own):
        return None
    last = own[-1]
    shared_object = " ".join(last[1:]) if len(last) >= 2 else ""
    out = []
    for part, mine in zip(parts, own):
        if len(mine) == 2 and mine[1].lower() in PARTICLES and shared_object and mine[0] != last[0]:
            return None  # "set up or delete accounts" / "sign up and become a member": is 'up' done to the object?
        bare = len(mine) == 1 or (len(mine) == 2 and mine[1].lower() in LOST_COMPLEMENT)  # "create", "search for"
        if bare and shared_object and mine[0] != last[0]:
            part = f"{part} {shared_object}"  # "create" -> "create my apps"
            mine = [*mine, *last[1:]]
        if len(mine) < 2 or mine[-1].lower() in DANGLING:
            return None  # a verb without its object: not a complete story
        out.append(part)
    out = _each_with_its_preposition(out, [mine[0].lower() for mine in own])
    if len({p.lower() for p in out}) < len(out):
        return None
    return tuple(out)


def split_story(story: Story, actions: tuple[str, ...] | None, lines: list[str]) -> Fix | None:
    """One story per action: the role and ends repeated, the means split.

    ``actions`` are the new means, each a verb with its object (:func:`complete_actions`); None, when
    they could not be made whole, or a story without a role gives no fix: the story is split by hand.
    """
    if actions is None or not (single_line(story) and story.means and len(actions) >= 2) \
            or story.format not in ("text", "markdown"):
        return None
    if story.role is None or not story.role.text.strip():
        return None
    if injection_reasons(story.text):
        return None  # never copy markup or instructions into two new stories: split by hand
    stories = [replace_part(story, story.means, m) for m in actions]
    indent = line_prefix(story, lines)
    labelled = _with_split_ids(story, stories, lines)
    if labelled is not None:  # the ids go with the stories: US-3 -> US-3a, US-3b
        rng, new_stories = labelled
        return Fix.replace(f"Split into {len(stories)} stories ({', '.join(split_ids(story, len(stories)))})", rng,
                           ("\n" + indent).join(new_stories))
    new_text = ("\n" + indent).join(stories)
    return Fix.replace(f"Split into {len(stories)} stories", story.range, new_text)


def _with_split_ids(story: Story, stories: list[str], lines: list[str]) -> tuple[Range, list[str]] | None:
    """(range from the story's id to its end, each new story with its own id written as the old one
    was: "US-3: ", "[US-3] "); None when the story's id is not written on its first line."""
    ids = split_ids(story, len(stories))
    line = lines[story.range.start.line] if story.range.start.line < len(lines) else ""
    head = line[: story.range.start.character]
    at = head.rfind(story.id)
    if ids is None or at < 0:
        return None
    if at > 0 and head[at - 1] == "[":
        at -= 1
    written = head[at:]  # "US-3: " or "[US-3] "
    start = Position.in_line(story.range.start.line, line, at)
    return Range(start, story.range.end), [written.replace(story.id, new, 1) + s for new, s in zip(ids, stories)]


def note_line(story: Story, lines: list[str], note: str) -> str | None:
    """A line that holds ``note`` beside the story in this format (None where the format has none)."""
    if story.format == "markdown":
        prefix = line_prefix(story, lines)
        bullet = re.match(r"^(\s*)", prefix).group(1)
        if prefix.strip():  # a list item: the note becomes a nested item
            return f"{bullet}  - Note: {note}"
        return f"{bullet}<!-- Note: {note} -->"
    if story.format in NOTE_PREFIX:
        indent = re.match(r"^(\s*)", lines[story.range.start.line]).group(1)
        return f"{indent}{NOTE_PREFIX[story.format]}{note}"
    return None


def move_to_note(story: Story, start: int, end: int, lines: list[str], title: str) -> Fix | None:
    """Remove ``story.text[start:end]`` from the story and keep it as a note on the next line."""
    if not single_line(story):
        return None
    removed = story.text[start:end].strip()
    note = note_line(story, lines, removed.strip("()[] ").strip())
    if note is None:
        return None
    before = story.text[:start].rstrip()
    after = story.text[end:].lstrip()
    joined = before + ("" if not after or after[0] in ",.;:!?" else " ") + after
    new_story = re.sub(r"\s{2,}", " ", joined).strip()
    eol = _end_of_line(story, lines)
    return Fix(title, (TextEdit(story.range, new_story), TextEdit(Range(eol, eol), "\n" + note)))


def delete_story(story: Story, lines: list[str]) -> Fix | None:
    """Delete the lines that hold only this story (an exact duplicate)."""
    if story.format not in ("text", "markdown"):
        return None
    first, last = story.range.start.line, story.range.end.line
    if line_prefix(story, lines).strip() not in ("", "-", "*", "+") and story.format == "markdown":
        return None
    if last + 1 < len(lines):
        rng = Range(Position(first, 0, 0), Position(last + 1, 0, 0))
    elif first > 0:  # the last line of the file: take the newline before it
        prev = lines[first - 1]
        rng = Range(Position.in_line(first - 1, prev, len(prev)), _end_of_line(story, lines))
    else:
        rng = Range(Position(first, 0, 0), _end_of_line(story, lines))
    return Fix("Delete this duplicate story", (TextEdit(rng, ""),))


def means_marker_for(family: str, old_marker: str) -> str:
    """The dominant family's marker, keeping 'to' when the old one had it ('I'd like to' -> 'I want to')."""
    words = old_marker.lower().split()
    subject = "we" if old_marker.lower().startswith("we") else "I"
    ability = any(w in ("can", "could", "able") for w in words)
    takes_to = words[-1:] == ["to"] or ability
    if family == "i want":
        verb = "want to be able to" if ability else ("want to" if takes_to else "want")
    elif family == "i'd like":
        verb = "would like to be able to" if ability else ("would like to" if takes_to else "would like")
    elif family == "i need":
        verb = "need to be able to" if ability else ("need to" if takes_to else "need")
    elif family == "i can":
        verb = "can"
    else:
        return old_marker
    return f"{subject} {verb}"


def role_marker_for(role: Part) -> str:
    return f"As {article_for(role.text)}"


def normalise_markers(story: Story, role_family: str, means_family: str) -> Fix | None:
    """Rewrite the story's markers into the backlog's dominant template."""
    if not single_line(story) or story.means is None:
        return None
    edits = []
    if story.role is not None and role_family == "as a" and len(story.role.marker.split()) == 1:
        edits.append(TextEdit(story.role.marker_range, role_marker_for(story.role)))
    new_means = means_marker_for(means_family, story.means.marker)
    if new_means.lower() != story.means.marker.lower():
        edits.append(TextEdit(story.means.marker_range, new_means))
    if not edits:
        return None
    return Fix("Rewrite into the backlog's template", tuple(edits))


def ends_first(story: Story) -> bool:
    """Written reason first: "In order to <ends>, as a <role>, I want <means>"."""
    return story.ends is not None and story.role is not None and \
        (story.ends.range.start.line, story.ends.range.start.character) < \
        (story.role.range.start.line, story.role.range.start.character)


def role_first(story: Story, role_family: str) -> Fix | None:
    """'In order to X, as a R, I want M.' -> 'As a R, I want M, in order to X.': the same words, role first."""
    if not single_line(story) or not ends_first(story) or story.means is None or story.trailing is not None:
        return None
    role_marker = story.role.marker
    if role_family == "as a" and len(role_marker.split()) == 1:
        role_marker = role_marker_for(story.role)
    end = story.text.rstrip()[-1:] if story.text.rstrip()[-1:] in ".!" else ""
    text = (f"{lead_role(role_marker, story.role.text)} {story.role.text}, {means_with_subject(story.means.marker)} "
            f"{story.means.text}, {trailing_ends(story.ends.marker)} {story.ends.text}{end}")
    return Fix.replace("Put the role first: " + text, story.range, text)


def join_sentences(story: Story, gap_start: int, gap_end: int) -> Fix | None:
    """'... status. So that I can' -> '... status, so that I can'."""
    if not single_line(story):
        return None
    rng = sub_range(story.text, story.range, gap_start, gap_end)
    return Fix.replace("Join into one sentence", rng, ", ")


# -- skeletons: a line that is not a story, rebuilt from its own words -------------------------------

ROLE_PLACEHOLDER = "<role>"
BENEFIT_PLACEHOLDER = "<benefit>"
PLACEHOLDERS = (ROLE_PLACEHOLDER, BENEFIT_PLACEHOLDER)
# "search should be fast", "the system must send reminders": what is wanted follows a modal verb
MODAL = re.compile(r"\s+(?:should|must|shall|will|needs? to|has to|have to|ought to|can)\s+(?P<be>be\s+)?", re.IGNORECASE)
CLAUSE_BREAK = re.compile(r"\s*;\s*|\s*,?\s+(?:and|or|but|also)\s+|\s*,\s+", re.IGNORECASE)
LIST_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")  # "- ", "3. " where the format keeps it in the text
# A line's own benefit: "search should be fast, so that I find books" keeps "so that I find books"
LINE_ENDS = re.compile(r"^(?P<wish>.*?\S),?\s+(?P<marker>so\s+that|in\s+order\s+to)\s+(?P<ends>\S.*)$", re.IGNORECASE)
# "As a member, need to renew loans": a wish whose "I want" is cut short, so the reader took it for the role
WISH_IN_ROLE = re.compile(r",\s*(?:I\s+)?(?:would\s+like|want|need|wish)\b(?P<to>\s+to\b)?\s*", re.IGNORECASE)
DETERMINERS = frozenset("a an the this that these those my our your their its his her every each all some any".split())
LINE_START_WORDS = DETERMINERS | ACTION_VERBS  # capitalised at the start of a line only: lower case mid-sentence


def clauses(text: str) -> list[str]:
    """The wishes of ``text``: split at 'and', 'or', ';' and commas, but only where the next piece
    says its own wish (has its own modal verb): "add and remove items should be possible" stays one."""
    pieces = [p for p in CLAUSE_BREAK.split(text.strip().rstrip(".!")) if p and p.strip()]
    seps = CLAUSE_BREAK.findall(text.strip().rstrip(".!"))
    out: list[str] = []
    for i, piece in enumerate(pieces):
        if out and not MODAL.search(" " + piece):
            out[-1] = out[-1] + seps[i - 1] + piece if i - 1 < len(seps) else f"{out[-1]} {piece}"
        else:
            out.append(piece.strip())
    return [c.strip(" ,") for c in out if c.strip(" ,")]


def mid_sentence(clause: str) -> str:
    """``clause`` as it reads after "I want": a first word capitalised only because it started the line
    ("The system must ...", "Search should ...", "Opening hours ...") in lower case; a name ("Google
    Maps") or an acronym keeps its capitals."""
    first, space, rest = clause.partition(" ")
    word = first.lower()
    if first[:1].isupper() and first[1:].islower() and (word in LINE_START_WORDS or word.endswith("ing")):
        return first.lower() + space + rest
    return clause


def wish(clause: str) -> str:
    """What follows "I want" for one clause, in its own words: "search should be fast" -> "to search
    fast"; "the renew button must be green" -> "the renew button to be green"; "the system must send
    reminders" -> "the system to send reminders"; a clause with no modal verb as it is."""
    clause = mid_sentence(clause)
    m = MODAL.search(" " + clause)
    if m is None:
        return clause
    subject, rest = clause[: m.start()].strip(), clause[m.end() - 1:].strip()
    if not subject or not rest:
        return clause
    words = subject.split()
    if m.group("be") and len(words) == 1 and words[0].lower() not in DETERMINERS and not words[0][0].isupper():
        return f"to {subject} {rest}"  # an activity: "search should be fast" -> "to search fast"
    return f"{subject} to {'be ' if m.group('be') else ''}{rest}"


def skeletons(story: Story) -> tuple[str, ...]:
    """Stories with placeholders built from the words of a line that is not a story (no 'I want'
    part): one per wish, "As a <role>, I want <its words>, so that <benefit>." The placeholders are
    for the user to fill in; nothing is invented for them. A story with a means but no role gets the
    role placeholder only. Empty when the story needs no skeleton."""
    if story.means is not None:
        if story.role is not None:
            return ()
        marker = story.means.marker.strip() or "I want"
        marker = marker[:1].lower() + marker[1:] if not marker.startswith("I ") else marker
        ends = f", {story.ends.marker.strip()} {story.ends.text.strip(' ,.;')}" if story.ends else ""
        return (f"As a {ROLE_PLACEHOLDER}, {marker} {story.means.text.strip(' ,.;')}{ends}.",)
    text, role_text = story.text, None
    if story.role is not None:
        cut = story.role.range.end.character - story.range.start.character
        text = story.text[cut:] if story.role.range.end.line == story.range.start.line else text
        role_text = story.role.text.strip(" ,.;")
        cut_short = WISH_IN_ROLE.search(role_text)
        head, comma, rest = role_text.partition(",")
        if cut_short and cut_short.start() > 0:
            role_text, text = role_text[:cut_short.start()], ("to " if cut_short.group("to") else "") + \
                role_text[cut_short.end():] + text
        elif comma and head.strip() and MODAL.search(" " + rest.strip()):
            role_text, text = head.strip(), rest + text  # "As a librarian, the catalogue must be searchable"
    role = f"As {article_for(role_text)} {role_text}" if role_text else f"As a {ROLE_PLACEHOLDER}"
    text = re.sub(r"\s+", " ", LIST_BULLET.sub("", text)).strip(" ,.;:")
    ends = f"so that {BENEFIT_PLACEHOLDER}"
    own = LINE_ENDS.match(text)
    if own:
        text, ends = own.group("wish").strip(" ,.;:"), f"{own.group('marker').lower()} {own.group('ends')}"
    if not text:
        return ()
    return tuple(f"{role}, I want {wish(c)}, {ends}." for c in clauses(text))


def skeleton_fix(story: Story, lines: list[str]) -> Fix | None:
    """The :func:`skeletons` of a one-line story as an edit that replaces it (one line per wish, each
    with the story's indentation or bullet and, where the story has an id, its own id: N-3a, N-3b).
    Never applied on its own (the placeholders are the user's to fill in): offered as a rewrite."""
    found = skeletons(story)
    if not found or not single_line(story) or story.format not in ("text", "markdown"):
        return None
    if injection_reasons(story.text):
        return None  # the skeleton copies the line's words: never markup or instructions
    title = f'Rewrite as a story: "{found[0]}"' + (f" (+{len(found) - 1} more)" if len(found) > 1 else "")
    bullet = LIST_BULLET.match(story.text)
    bullet = bullet.group(0).lstrip() if bullet else ""
    found = [bullet + s for s in found]
    labelled = _with_split_ids(story, found, lines) if len(found) > 1 else None
    if labelled is not None:
        rng, found = labelled
    else:
        rng = story.range
    return Fix.replace(title, rng, ("\n" + line_prefix(story, lines)).join(found))


def split_ids(story: Story, count: int) -> list[str] | None:
    """The ids of ``count`` stories split from ``story``: US-3 -> US-3a, US-3b; None without an id of its own."""
    if not story.explicit_id or not story.id or count > 26:
        return None
    return [f"{story.id}{chr(ord('a') + i)}" for i in range(count)]

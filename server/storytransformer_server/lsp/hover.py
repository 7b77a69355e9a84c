"""Hover (``textDocument/hover``) on a finding: what is wrong, why it matters, how to fix it, an example,
and for a duplicate the other story with its place (``file:line``, relative to its workspace folder).

The finding's message and the rule's declaration (name, criterion, summary) come from the core; the
sentences on why each QUS criterion matters and the worked examples are kept here, one per criterion
and one per rule (a test checks that every rule has them).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from lsprotocol import types

from .convert import lsp_range, uri_to_path

if TYPE_CHECKING:
    from .server import StoryServer

DUPLICATE_CODES = frozenset({"ST601", "ST602", "ST603"})

# Why each QUS criterion matters (one sentence).
WHY = {
    "well-formed": "A story needs at least a role and a means, or nobody can tell who needs what.",
    "atomic": "A story that asks for several features cannot be estimated, planned or accepted one at a time.",
    "minimal": "Anything beyond role, means and ends hides the need; details belong in notes or acceptance criteria.",
    "full-sentence": "A story that reads as one well-formed sentence is understood the same way by everyone.",
    "uniform": "One template across the backlog makes stories quick to read and compare.",
    "unique": "Duplicates get estimated, built and tested twice, and drift apart when only one is updated.",
    "unambiguous": "A vague term means different things to different readers, so the result cannot be tested.",
    "problem-oriented": "Naming a solution ties the team's hands; the story should state the problem to solve.",
    "estimatable": "A story too large or vague to estimate (an epic) cannot be planned into one iteration.",
    "conceptually-sound": "The means should be a feature and the ends a reason, or the story is mis-shaped.",
    "complete": "A missing step leaves a gap the users will hit.",
    "conflict-free": "Conflicting stories cannot both be built.",
}

# code -> (how to fix, example: before, after)
ADVICE: dict[str, tuple[str, str, str]] = {
    "ST101": ("Start with who wants it: 'As a <role>, ...'.",
              "I want to export the report.", "As an accountant, I want to export the report."),
    "ST102": ("Say what the role wants after the role: 'I want to <means>'.",
              "As a visitor, the catalogue.", "As a visitor, I want to search the catalogue."),
    "ST103": ("Rewrite the text as a story, or keep it as a note outside the backlog.",
              "Export bug in reports", "As an accountant, I want to export reports without errors."),
    "ST104": ("Add why: ', so that <ends>'.",
              "As a member, I want to renew a loan.", "As a member, I want to renew a loan, so that I avoid a fine."),
    "ST201": ("Split the story: one action per story (the quick fix does it).",
              "As a user, I want to add and delete tags.",
              "As a user, I want to add tags. / As a user, I want to delete tags."),
    "ST301": ("Move the bracketed text into a note or the acceptance criteria (the quick fix does it).",
              "As a librarian, I want to add titles (see the old form).", "As a librarian, I want to add titles."),
    "ST302": ("Keep the extra sentences as notes or acceptance criteria (the quick fix moves them).",
              "As a user, I want to log in, so that I see my loans. Use SSO.",
              "As a user, I want to log in, so that I see my loans."),
    "ST303": ("Write each marker once.",
              "As a user, as a user, I want to log in.", "As a user, I want to log in."),
    "ST304": ("Keep examples and lists in the acceptance criteria; state the need alone.",
              "As a user, I want to filter by fields such as date and author.",
              "As a user, I want to filter by field."),
    "ST401": ("Join the fragment to the line it belongs to, or start the story with a capital.",
              "so that I can find a book.", "As a visitor, I want to search, so that I can find a book."),
    "ST402": ("Join the sentences: '..., so that ...' (the quick fix does it).",
              "As a user, I want to see my status. So that I can plan.",
              "As a user, I want to see my status, so that I can plan."),
    "ST403": ("End the story with a full stop.",
              "As a user, I want to log in", "As a user, I want to log in."),
    "ST501": ("Use the backlog's dominant markers (the quick fix rewrites them).",
              "As a user, I'd like to log in.", "As a user, I want to log in."),
    "ST502": ("Put a comma between the parts.",
              "As a user I want to log in so that I see my loans.",
              "As a user, I want to log in, so that I see my loans."),
    "ST601": ("Delete one of the two (the quick fix deletes this one), or merge them.",
              "The same story twice.", "The story once."),
    "ST602": ("Delete one, or merge them into one story.",
              "As a user, I want to log in. / as a user, I want to log in",
              "As a user, I want to log in."),
    "ST603": ("Merge the two stories into one (\"Merge with\" with a model), or make the difference explicit.",
              "As a visitor, I want to search books. / As a visitor, I want to look up titles.",
              "As a visitor, I want to search books by title."),
    "ST604": ("Merge the overlapping stories, or narrow each one to what only it asks for.",
              "As a member, I want to renew loans. / As a member, I want to renew and return loans.",
              "As a member, I want to renew loans. / As a member, I want to return loans."),
    "ST605": ("Merge into one story naming both roles, or say why each role needs it differently.",
              "As a member, I want to renew loans. / As a librarian, I want to renew loans.",
              "As a member or librarian, I want to renew loans."),
    "ST701": ("Say what the word means in measurable terms, or accept the word for the project (code action).",
              "As a user, I want fast search.", "As a user, I want search results within one second."),
    "ST801": ("State the need, not the widget or technology that meets it.",
              "As a user, I want a red button to delete my account.", "As a user, I want to delete my account."),
    "ST901": ("Split the epic into stories that each deliver one thing.",
              "As an admin, I want to manage all users.",
              "As an admin, I want to deactivate a user."),
    "ST902": ("Cut the story down to role, means and ends; keep the rest as notes.",
              "A 3,000-character story.", "One sentence: role, means, ends."),
}


def relative(path: str, roots: list[str]) -> str:
    """``path`` relative to the deepest workspace folder that holds it (as given otherwise)."""
    best = None
    for root in roots:
        rel = os.path.relpath(path, root)
        if rel != ".." and not rel.startswith(".." + os.sep) and (best is None or len(rel) < len(best)):
            best = rel
    return (best or path).replace(os.sep, "/")


def contains(rng: types.Range, pos: types.Position) -> bool:
    start, end = (rng.start.line, rng.start.character), (rng.end.line, rng.end.character)
    return start <= (pos.line, pos.character) <= end


def finding_markdown(finding, others: list[tuple[str, int, str]]) -> str:
    """The hover text of one finding; ``others``: (file relative to its folder, 1-based line, text)."""
    from storytransformer.rules import RULES

    rule = RULES.get(finding.code)
    name = f" {rule.name}" if rule else ""
    parts = [f"**{finding.code}{name}** · {finding.criterion} · {finding.severity.value}",
             f"**What is wrong:** {finding.message}"]
    why = WHY.get(finding.criterion)
    if why:
        parts.append(f"**Why it matters** ({finding.criterion}): {why}")
    advice = ADVICE.get(finding.code)
    how = finding.fix.title if finding.fix is not None else None
    if advice:
        parts.append(f"**How to fix:** {advice[0]}" + (f" Quick fix: *{how}*." if how else ""))
        parts.append(f"**Example:** `{advice[1]}` → `{advice[2]}`")
    elif how:
        parts.append(f"**How to fix:** quick fix *{how}*.")
    elif rule:
        parts.append(f"**Rule:** {rule.summary}")
    for rel, line, text in others:
        parts.append(f"**Other story** (`{rel}:{line}`): {text}")
    if rule:
        parts.append(f"[{finding.code} documentation]({rule.url})")
    return "\n\n".join(parts)


def register(server: "StoryServer") -> None:
    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(params: types.HoverParams):
        uri = params.text_document.uri
        path = uri_to_path(uri)
        if path is None or path not in server.core.overlays:
            return None
        pub = await server.diagnostics.ensure_current(path)
        if pub is None:
            return None
        here = [f for f in pub.findings.findings if contains(lsp_range(f.range), params.position)]
        if not here:
            return None
        core, roots = server.core, server.roots()
        sections = []
        for f in here:
            others = []
            if f.code in DUPLICATE_CODES:
                for rel in f.related:
                    story = await core.run(core.find_story, rel.file, rel.story_id, "any")
                    text = story.text if story is not None else rel.message
                    others.append((relative(rel.file, roots), rel.range.start.line + 1, text))
            sections.append(finding_markdown(f, others))
        first = lsp_range(here[0].range)
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                                        value="\n\n---\n\n".join(sections)),
                           range=first)

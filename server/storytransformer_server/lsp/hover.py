"""Hover (``textDocument/hover``) on a finding: what is wrong, why it matters, how to fix it, an example,
and for a duplicate the other story with its place (``file:line``, relative to its workspace folder).

The finding's message and the rule's declaration (name, criterion, summary, fix hint, worked examples)
come from the core; only the sentences on why each QUS criterion matters are kept here, one per
criterion (a test checks that every criterion has one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from .convert import lsp_range, relative, uri_to_path

if TYPE_CHECKING:
    from .server_context import ServerContext

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
    "independent": "A story that leans on another cannot be planned, built or dropped on its own.",
    "complete": "A missing step leaves a gap the users will hit.",
    "conflict-free": "Conflicting stories cannot both be built.",
}


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
    how = finding.fix.title if finding.fix is not None else None
    if rule and rule.fix:
        parts.append(f"**How to fix:** {rule.fix}" + (f" Quick fix: *{how}*." if how else ""))
        before, after = rule.before, rule.after
        if before and after:
            parts.append(f"**Example:** `{before.shown()}` → `{after.shown()}`")
    elif how:
        parts.append(f"**How to fix:** quick fix *{how}*.")
    elif rule:
        parts.append(f"**Rule:** {rule.summary}")
    for rel, line, text in others:
        parts.append(f"**Other story** (`{rel}:{line}`): {text}")
    if rule:
        parts.append(f"[{finding.code} documentation]({rule.url})")
    return "\n\n".join(parts)


def register(server: "ServerContext") -> None:
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

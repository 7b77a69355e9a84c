"""Inline completion (LSP 3.18 ``textDocument/inlineCompletion``): ghost text.

Deterministic first: while a story is being typed, complete the template with
the backlog's own roles (most frequent first) and markers, and when another
story already asks what the typed means asks, complete the line with that
story's remaining words (:mod:`.typing_duplicates`); on an existing story
with safe fixes, offer the fixed story. When the daemon is already connected
and the user asked explicitly, the model's rewrite comes first. Cancellation
(``$/cancelRequest``) cancels the task, and with it any model request in flight.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsprotocol import types

from storytransformer.checking import SAFE_ONLY

from storytransformer.story import utf16_len

from . import typing_duplicates
from .convert import lsp_range, uri_to_path
from .model_adapter import ModelUnavailable

if TYPE_CHECKING:
    from .server_context import ServerContext

log = logging.getLogger(__name__)
MAX_ROLES = 5
MODEL_TIMEOUT_S = 5.0

_ROLE_OPEN = re.compile(r"(?:^|(?<=[\s\-*+.):\]>]))(?P<marker>as\s+(?:an?|the)\s+)(?P<partial>[^,]*)$", re.I)
_AFTER_ROLE = re.compile(r"(?:^|(?<=[\s\-*+.):\]>]))as\s+(?:an?|the)\s+[^,]+,(?P<space>\s*)$", re.I)
_MEANS = re.compile(r"(?:^|(?<=[\s\-*+.):\]>]))as\s+(?:an?|the)\s+[^,]+,\s*(?:i|we)\s+"
                    r"(?:want(?:\s+to)?|would\s+like(?:\s+to)?|['’]d\s+like(?:\s+to)?|need(?:\s+to)?|can)\s+"
                    r"(?P<means>.+)$", re.I)
_HAS_ENDS = re.compile(r"\b(so\s+that|in\s+order\s+to|so\s+i\b|so\s+we\b)", re.I)


@dataclass(frozen=True)
class Suggestion:
    text: str  # what replaces the line from ``start`` (a code-point column) to the cursor
    start: int


def template_suggestions(before: str, roles: list[str], means_marker: str, after: str = "") -> list[Suggestion]:
    """Completions for a story being typed: the cursor is at the end of the line, after ``before``."""
    if after.strip():
        return []  # editing inside an existing story: that is what the fixed-story suggestion is for
    if m := _ROLE_OPEN.search(before):
        partial = m.group("partial")
        start = m.start("partial")
        if partial.strip() and partial[-1:].isspace():
            return []  # "As a product owner " : let the user go on
        low = partial.lower()
        out = [Suggestion(f"{r}, {means_marker} ", start) for r in roles
               if r.lower().startswith(low) and r.lower() != low][:MAX_ROLES]
        if partial.strip():
            out.append(Suggestion(f"{partial}, {means_marker} ", start))
        return out
    if m := _AFTER_ROLE.search(before):
        lead = "" if m.group("space") else " "
        return [Suggestion(f"{lead}{means_marker} ", len(before))]
    if (m := _MEANS.search(before)) and not _HAS_ENDS.search(m.group("means")):
        means = m.group("means")
        if len(means.split()) >= 2 and before[-1:].isalnum():
            return [Suggestion(", so that ", len(before))]
    return []


def apply_fixes(line_text: str, story, findings) -> str | None:
    """The story's text with every non-overlapping safe fix applied (one-line stories only)."""
    r = story.range
    if r.start.line != r.end.line:
        return None
    edits = []
    for f in findings:
        if f.story_id != story.id or not SAFE_ONLY.allows(f):  # the core's policy: no split, no deletion
            continue
        es = list(f.fix.edits)
        if any(e.range.start.line != r.start.line or e.range.end.line != r.start.line for e in es):
            continue
        spans = [(e.range.start.character, e.range.end.character) for e in es]
        if any(a < d and c < b for a, b in spans for c, d, *_ in edits):
            continue
        edits.extend((e.range.start.character, e.range.end.character, e.new_text) for e in es)
    if not edits:
        return None
    text = line_text
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    # the story's own span in the fixed line
    shift = sum(len(new) - (end - start) for start, end, new in edits if start >= r.start.character)
    return text[r.start.character:r.end.character + shift]


async def cursor_context(server: "ServerContext", uri: str, position: types.Position):
    """What completions need at ``position`` of an open story file: (path, the line's text, the cursor's
    column in code points, the roles to offer, the backlog's means marker); None elsewhere."""
    path = uri_to_path(uri)
    doc = server.open_document(uri)
    if path is None or doc is None or path not in server.core.overlays:
        return None
    lines = doc.lines
    if position.line >= len(lines):
        return None
    line_text = lines[position.line].rstrip("\r\n")
    col = min(doc.position_codec.position_from_client_units(lines, position).character, len(line_text))
    core = server.core
    return path, line_text, col, await core.run(core.roles, path), await core.run(core.means_marker, path)


def register(server: "ServerContext") -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(params: types.InlineCompletionParams):
        at = await cursor_context(server, params.text_document.uri, params.position)
        if at is None:
            return None
        path, line_text, col, roles, marker = at
        before = line_text[:col]
        core = server.core
        items = [types.InlineCompletionItem(
            insert_text=s.text,
            range=types.Range(start=types.Position(params.position.line, utf16_len(line_text[:s.start])),
                              end=params.position))
            for s in template_suggestions(before, roles, marker, line_text[col:])]
        if not line_text[col:].strip():
            found = await typing_duplicates.of(server).find(path, params.position.line, before)
            items = typing_duplicates.inline_items(found, before, params.position.line,
                                                   params.position.character) + items
        if items:
            return types.InlineCompletionList(items=items)

        pub = await server.diagnostics.ensure_current(path)
        if pub is None:
            return None
        story = await core.run(core.story_at, path, params.position.line)
        if story is None or story.file != path:
            return None
        story_findings = [f for f in pub.findings.findings if f.story_id == story.id]
        if not story_findings:
            return None
        rng = lsp_range(story.range)
        invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        if invoked and server.model.connected:
            try:
                texts = await asyncio.wait_for(
                    server.propose("propose/rewrite", {"file": path, "id": story.id}, [path]), MODEL_TIMEOUT_S)
                items.extend(types.InlineCompletionItem(insert_text=t, range=rng) for t in texts[:1])
            except (ModelUnavailable, asyncio.TimeoutError) as e:
                log.info("no model suggestion: %s", e or "timed out")
        fixed = apply_fixes(line_text, story, story_findings)
        if fixed and fixed != story.text:
            items.append(types.InlineCompletionItem(insert_text=fixed, range=rng))
        return types.InlineCompletionList(items=items) if items else None

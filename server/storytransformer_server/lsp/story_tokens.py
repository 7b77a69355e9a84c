"""The parts of each story coloured as the core reads them (``textDocument/semanticTokens/full``): the role,
the means and the ends each in a colour of its own, their markers ("As a", "I want to", "so that") as
keywords. A writer sees at a glance where the parser put the boundaries, and so why a rule fired: an
ends read into the means, a role that swallowed the start of the means, a line that is no story at all.

The token types are standard ones, so any theme colours them without configuration: the role ``type``,
the means ``function``, the ends ``string``, the markers ``keyword``. A part over several lines (a
Markdown paragraph) is coloured line by line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from storytransformer.story import Story, utf16_len

if TYPE_CHECKING:
    from .documents import CoreState
    from .server_context import ServerContext

TOKEN_TYPES = ["type", "function", "string", "keyword"]
LEGEND = types.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=[])
PART_TYPE = {"role": 0, "means": 1, "ends": 2}
MARKER = 3


def _utf16(p, text: str) -> int:
    return p.utf16 if p.utf16 >= 0 else utf16_len(text[: p.character])


def _spans(lines: list[str], rng, kind: int) -> list[tuple[int, int, int, int]]:
    """(line, UTF-16 start, UTF-16 length, type) of a range, one span per line it covers; a continued
    line starts at its first character, not its indentation."""
    out = []
    for line in range(max(rng.start.line, 0), min(rng.end.line + 1, len(lines))):
        text = lines[line]
        start = _utf16(rng.start, text) if line == rng.start.line else utf16_len(text) - utf16_len(text.lstrip())
        end = _utf16(rng.end, text) if line == rng.end.line else utf16_len(text)
        if end > start:
            out.append((line, start, end - start, kind))
    return out


def story_spans(story: Story, lines: list[str]) -> list[tuple[int, int, int, int]]:
    spans = []
    for part in story.parts():
        if part.marker:
            spans += _spans(lines, part.marker_range, MARKER)
        spans += _spans(lines, part.range, PART_TYPE[part.kind])
    return spans


def encode(spans: list[tuple[int, int, int, int]]) -> list[int]:
    """LSP's relative encoding: per token, the line delta, the start delta (on the same line) or start,
    the length, the type and no modifiers; overlapping spans keep the first."""
    data: list[int] = []
    last_line, last_start, last_end = 0, 0, -1
    for line, start, length, kind in sorted(set(spans)):
        if line == last_line and start < last_end:
            continue  # overlaps the previous token
        data += [line - last_line, start - last_start if line == last_line else start, length, kind, 0]
        last_line, last_start, last_end = line, start, start + length
    return data


def file_tokens(core: "CoreState", path: str) -> list[int]:
    source = core.project_for(path).workspace.files.get(path)
    if source is None:
        return []
    spans = []
    for story in source.stories:
        spans += story_spans(story, source.lines)
    return encode(spans)


def register(server: "ServerContext") -> None:
    @server.feature(types.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, LEGEND)
    async def tokens(params: types.SemanticTokensParams):
        path = await server.current_path(params.text_document.uri)
        if path is None:
            return types.SemanticTokens(data=[])
        return types.SemanticTokens(data=await server.core.run(file_tokens, server.core, path))

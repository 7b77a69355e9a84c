"""Completion (``textDocument/completion``): the inline completion's template, role and marker suggestions
(:func:`.inline.template_suggestions`) as ordinary completion items, for clients without inline
completion (Neovim 0.7-0.10, Helix, Emacs). Roles of the same file come first, then the rest of its
workspace folder's, each by frequency.

Each item replaces the text from where the suggestion starts (the role typed so far) to the cursor
(a ``textEdit``), so a client that filters by the word under the cursor still keeps it.

While a story's means is typed, the stories that already ask the same come first, one item each
("Already asked: backlog.txt:12", :mod:`.typing_duplicates`): they name the story, show it, and insert
nothing, so the writer can reuse or merge it instead of adding a duplicate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from storytransformer.story import utf16_len

from . import typing_duplicates
from .inline import cursor_context, template_suggestions

if TYPE_CHECKING:
    from .server_context import ServerContext

TRIGGERS = [" ", ","]


def items_for(before: str, after: str, line: int, character: int, roles: list[str],
              marker: str) -> list[types.CompletionItem]:
    """Completion items for the cursor at ``(line, character)`` (UTF-16), after ``before`` on its line."""
    items = []
    for i, s in enumerate(template_suggestions(before, roles, marker, after)):
        role = s.text.split(",", 1)[0] if s.text[:1] not in (",", " ") and "," in s.text else ""
        if role:
            label, kind, detail = role, types.CompletionItemKind.Value, f"role: As a {s.text.rstrip()}"
        else:
            label, kind, detail = s.text.strip(), types.CompletionItemKind.Keyword, "story template"
        rng = types.Range(start=types.Position(line, utf16_len(before[:s.start])),
                          end=types.Position(line, character))
        items.append(types.CompletionItem(
            label=label, kind=kind, detail=detail, sort_text=f"{i:04d}", filter_text=s.text,
            text_edit=types.TextEdit(range=rng, new_text=s.text), preselect=i == 0 or None))
    return items


def register(server: "ServerContext") -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=TRIGGERS))
    async def completion(params: types.CompletionParams):
        at = await cursor_context(server, params.text_document.uri, params.position)
        if at is None:
            return None
        path, line_text, col, roles, marker = at
        items = items_for(line_text[:col], line_text[col:], params.position.line, params.position.character,
                          roles, marker)
        if not line_text[col:].strip():
            found = await typing_duplicates.of(server).find(path, params.position.line, line_text[:col])
            markdown = typing_duplicates.client_renders_markdown(server.client_capabilities)
            items = typing_duplicates.completion_items(found, params.position.line, params.position.character,
                                                       markdown) + items
        return types.CompletionList(is_incomplete=True, items=items) if items else None

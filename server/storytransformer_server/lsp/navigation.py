"""Finding one's way in a backlog, as a code editor finds functions: the stories of a file as its outline
(``textDocument/documentSymbol``), any story of the workspace by its id or its words (``workspace/symbol``),
and the story an id such as ``US-12`` names, from wherever the id is written (``textDocument/definition``,
``textDocument/references``). Ids are the formats' own explicit ids (``US-12:`` in text, ``## US-12`` in
Markdown, ``@US-12`` in Gherkin, the id column of a CSV); stories without one are found by their words.
The lookups read the core's workspace on its worker thread, so they see the text the diagnostics see.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterator

from lsprotocol import types

from storytransformer.story import Story, utf16_len

from .convert import lsp_range, path_to_uri, uri_to_path

if TYPE_CHECKING:
    from .documents import CoreState
    from .server_context import ServerContext

MAX_SYMBOLS = 200  # workspace/symbol answers: a client filters further as the user types
NAME_CHARS = 80  # a story's name in an outline: its id and the start of what it asks
# An id as written anywhere in a story file: "US-12", "[US-12]", "#12", "US-3a" (a split's part).
ID_TOKEN = re.compile(r"(?<![\w-])(?P<id>[A-Za-z][A-Za-z0-9_]*-\d+[a-z]?|#\d+)(?![\w-])")


def story_name(story: Story) -> str:
    """The outline's name of a story: its explicit id, then its means (or its text), shortened."""
    what = " ".join((story.means.text if story.means else story.text).split())
    if len(what) > NAME_CHARS:
        what = what[: NAME_CHARS - 1].rstrip() + "…"
    return f"{story.id}  {what}" if story.explicit_id else what


def story_detail(story: Story) -> str:
    return " ".join(story.role.text.split()) if story.role else ""


def document_symbols(core: "CoreState", path: str) -> list[types.DocumentSymbol]:
    source = core.project_for(path).workspace.files.get(path)
    if source is None:
        return []
    out = []
    for s in source.stories:
        rng = lsp_range(s.range)
        out.append(types.DocumentSymbol(name=story_name(s), detail=story_detail(s) or None,
                                        kind=types.SymbolKind.Object, range=rng,
                                        selection_range=types.Range(rng.start, rng.start)))
    return out


def _all_stories(core: "CoreState") -> Iterator[Story]:
    seen: set[int] = set()
    for project in core.projects:
        ws = project.workspace
        if id(ws) in seen:
            continue
        seen.add(id(ws))
        for path in sorted(ws.files):
            yield from ws.files[path].stories


def workspace_symbols(core: "CoreState", query: str) -> list[types.WorkspaceSymbol]:
    """Stories whose id starts with ``query`` (exact ids first) or whose text has every word of it."""
    q = query.strip().lower()
    words = q.split()
    ranked: list[tuple[int, str, int, Story]] = []
    for s in _all_stories(core):
        sid = s.id.lower() if s.explicit_id else ""
        if q and sid == q:
            rank = 0
        elif q and sid.startswith(q):
            rank = 1
        elif all(w in s.text.lower() for w in words):
            rank = 2
        else:
            continue
        ranked.append((rank, s.file, s.line, s))
    ranked.sort(key=lambda r: r[:3])
    return [types.WorkspaceSymbol(name=story_name(s), kind=types.SymbolKind.Object,
                                  location=types.Location(uri=path_to_uri(s.file), range=lsp_range(s.range)),
                                  container_name=story_detail(s) or None)
            for _, _, _, s in ranked[:MAX_SYMBOLS]]


def id_at(line_text: str, utf16_column: int) -> str | None:
    """The story id written under the cursor (a UTF-16 column of ``line_text``), if any."""
    for m in ID_TOKEN.finditer(line_text):
        start, end = utf16_len(line_text[: m.start("id")]), utf16_len(line_text[: m.end("id")])
        if start <= utf16_column <= end:
            return m.group("id")
    return None


def _stories_with_id(core: "CoreState", story_id: str, near: str) -> list[Story]:
    """The stories whose explicit id is ``story_id`` (any case), those of the file ``near`` first."""
    want = story_id.lower()
    found = [s for s in _all_stories(core) if s.explicit_id and s.id.lower() == want]
    return sorted(found, key=lambda s: (s.file != near, s.file, s.line))


def definition(core: "CoreState", path: str, line: int, column: int) -> list[types.Location]:
    source = core.project_for(path).workspace.files.get(path)
    if source is None or not 0 <= line < len(source.lines):
        return []
    story_id = id_at(source.lines[line], column)
    if story_id is None:
        return []
    return [types.Location(uri=path_to_uri(s.file), range=lsp_range(s.range))
            for s in _stories_with_id(core, story_id, path)]


def references(core: "CoreState", path: str, line: int, column: int, declaration: bool) -> list[types.Location]:
    """Every place the id under the cursor is written in a story file of the workspace; the stories that
    carry it as their id count only with ``declaration``."""
    source = core.project_for(path).workspace.files.get(path)
    if source is None or not 0 <= line < len(source.lines):
        return []
    story_id = id_at(source.lines[line], column)
    if story_id is None:
        return []
    own = {(s.file, s.line) for s in _stories_with_id(core, story_id, path)}
    want = story_id.lower()
    out: list[types.Location] = []
    seen: set[int] = set()
    for project in core.projects:
        ws = project.workspace
        if id(ws) in seen:
            continue
        seen.add(id(ws))
        for file in sorted(ws.files):
            for i, text in enumerate(ws.files[file].lines):
                if want not in text.lower():
                    continue
                for m in ID_TOKEN.finditer(text):
                    if m.group("id").lower() != want:
                        continue
                    if not declaration and (file, i) in own:
                        continue
                    start, end = utf16_len(text[: m.start("id")]), utf16_len(text[: m.end("id")])
                    out.append(types.Location(uri=path_to_uri(file), range=types.Range(
                        types.Position(i, start), types.Position(i, end))))
    return out


def register(server: "ServerContext") -> None:
    async def current(uri: str) -> str | None:
        """The path of ``uri`` once the core holds the open document's current text."""
        path = uri_to_path(uri)
        if path is None:
            return None
        if path in server.core.overlays:
            await server.diagnostics.ensure_current(path)
        return path

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def symbols(params: types.DocumentSymbolParams):
        path = await current(params.text_document.uri)
        return [] if path is None else await server.core.run(document_symbols, server.core, path)

    @server.feature(types.WORKSPACE_SYMBOL)
    async def find(params: types.WorkspaceSymbolParams):
        await server.diagnostics.scanned.wait()
        return await server.core.run(workspace_symbols, server.core, params.query)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    async def go_to(params: types.DefinitionParams):
        path = await current(params.text_document.uri)
        if path is None:
            return None
        p = params.position
        return await server.core.run(definition, server.core, path, p.line, p.character) or None

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    async def mentions(params: types.ReferenceParams):
        path = await current(params.text_document.uri)
        if path is None:
            return None
        p = params.position
        return await server.core.run(references, server.core, path, p.line, p.character,
                                     params.context.include_declaration)

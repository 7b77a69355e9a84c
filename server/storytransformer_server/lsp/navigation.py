"""Finding one's way in a backlog, as a code editor finds functions: the stories of a file as its outline
(``textDocument/documentSymbol``), any story of the workspace by its id or its words (``workspace/symbol``),
the story an id such as ``US-12`` names, from wherever the id is written (``textDocument/definition``,
``textDocument/references``), and a new id for it everywhere it is written (``textDocument/rename``).
Ids are the formats' own explicit ids (``US-12:`` in text, ``## US-12`` in Markdown, ``@US-12`` in
Gherkin, the id column of a CSV); stories without one are found by their words.
The lookups read the core's workspace on its worker thread, so they see the text the diagnostics see.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterator

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from storytransformer.story import Story, utf16_len

from .convert import lsp_range, path_to_uri, relative, uri_to_path

if TYPE_CHECKING:
    from .documents import CoreState
    from .server_context import ServerContext

MAX_SYMBOLS = 200  # workspace/symbol answers: a client filters further as the user types
NAME_CHARS = 80  # a story's name in an outline: its id and the start of what it asks
# An id as written anywhere in a story file: "US-12", "[US-12]", "#12", "US-3a" (a split's part).
ID_TOKEN = re.compile(r"(?<![\w-])(?P<id>[A-Za-z][A-Za-z0-9_]*-\d+[a-z]?|#\d+)(?![\w-])")
WHOLE_ID = re.compile(r"(?:[A-Za-z][A-Za-z0-9_]*-\d+[a-z]?|#\d+)\Z")


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


def _workspaces(core: "CoreState") -> Iterator:
    """Each project's workspace once (projects may share one)."""
    seen: set[int] = set()
    for project in core.projects:
        if id(project.workspace) not in seen:
            seen.add(id(project.workspace))
            yield project.workspace


def _all_stories(core: "CoreState") -> Iterator[Story]:
    for ws in _workspaces(core):
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


def _id_spans(text: str) -> Iterator[tuple[str, int, int]]:
    """(id, UTF-16 start, UTF-16 end) of every story id written in one line."""
    for m in ID_TOKEN.finditer(text):
        yield m.group("id"), utf16_len(text[: m.start("id")]), utf16_len(text[: m.end("id")])


def id_at(line_text: str, utf16_column: int) -> str | None:
    """The story id written under the cursor (a UTF-16 column of ``line_text``), if any."""
    return next((sid for sid, start, end in _id_spans(line_text) if start <= utf16_column <= end), None)


def _id_under_cursor(core: "CoreState", path: str, line: int, column: int) -> tuple[str, types.Range] | None:
    """The id under the cursor and its range, from the text the core holds."""
    source = core.project_for(path).workspace.files.get(path)
    if source is None or not 0 <= line < len(source.lines):
        return None
    for sid, start, end in _id_spans(source.lines[line]):
        if start <= column <= end:
            return sid, types.Range(types.Position(line, start), types.Position(line, end))
    return None


def _stories_with_id(core: "CoreState", story_id: str, near: str) -> list[Story]:
    """The stories whose explicit id is ``story_id`` (any case), those of the file ``near`` first."""
    want = story_id.lower()
    found = [s for s in _all_stories(core) if s.explicit_id and s.id.lower() == want]
    return sorted(found, key=lambda s: (s.file != near, s.file, s.line))


def definition(core: "CoreState", path: str, line: int, column: int) -> list[types.Location]:
    found = _id_under_cursor(core, path, line, column)
    if found is None:
        return []
    return [types.Location(uri=path_to_uri(s.file), range=lsp_range(s.range))
            for s in _stories_with_id(core, found[0], path)]


def references(core: "CoreState", path: str, line: int, column: int, declaration: bool) -> list[types.Location]:
    """Every place the id under the cursor is written in a story file of the workspace; the stories that
    carry it as their id count only with ``declaration``."""
    found = _id_under_cursor(core, path, line, column)
    if found is None:
        return []
    want = found[0].lower()
    own = {(s.file, s.line) for s in _stories_with_id(core, want, path)}
    out: list[types.Location] = []
    for ws in _workspaces(core):
        for file in sorted(ws.files):
            for i, text in enumerate(ws.files[file].lines):
                if want not in text.lower() or (not declaration and (file, i) in own):
                    continue
                out += [types.Location(uri=path_to_uri(file), range=types.Range(types.Position(i, start),
                                                                                 types.Position(i, end)))
                        for sid, start, end in _id_spans(text) if sid.lower() == want]
    return out


def prepare_rename(core: "CoreState", path: str, line: int, column: int) -> types.PrepareRenamePlaceholder | None:
    """The id under the cursor, when a story carries it (an id no story has is no symbol to rename)."""
    found = _id_under_cursor(core, path, line, column)
    if found is None or not _stories_with_id(core, found[0], path):
        return None
    return types.PrepareRenamePlaceholder(range=found[1], placeholder=found[0])


def rename(core: "CoreState", path: str, line: int, column: int, new_id: str,
           versions: dict[str, int]) -> types.WorkspaceEdit | None:
    """Every place the id under the cursor is written, the stories that carry it included, rewritten as
    ``new_id``; each open document's edit is for the version the core checked (``versions``), so an
    editor refuses it for a text changed since. A new id that is not an id, or that another story
    already carries, is refused with a message that says so."""
    found = _id_under_cursor(core, path, line, column)
    if found is None or not _stories_with_id(core, found[0], path):
        return None
    new_id = new_id.strip()
    if not WHOLE_ID.match(new_id):
        shown = new_id if len(new_id) <= 40 else new_id[:40] + "…"
        raise JsonRpcInvalidParams(f"'{shown}' is not a story id (letters, a hyphen and a number, e.g. US-12, "
                                   "or #12)")
    taken = _stories_with_id(core, new_id, path) if new_id.lower() != found[0].lower() else []
    if taken:
        raise JsonRpcInvalidParams(f"{new_id} is already the id of the story at "
                                   f"{relative(taken[0].file, core.roots)}:{taken[0].line + 1}")
    by_file: dict[str, list[types.TextEdit]] = {}
    for loc in references(core, path, line, column, True):
        by_file.setdefault(loc.uri, []).append(types.TextEdit(range=loc.range, new_text=new_id))
    changes = []
    for uri, edits in by_file.items():
        version = versions.get(uri_to_path(uri) or "")
        changes.append(types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version), edits=edits))
    return types.WorkspaceEdit(document_changes=changes)


def register(server: "ServerContext") -> None:
    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def symbols(params: types.DocumentSymbolParams):
        path = await server.current_path(params.text_document.uri)
        return [] if path is None else await server.core.run(document_symbols, server.core, path)

    @server.feature(types.WORKSPACE_SYMBOL)
    async def find(params: types.WorkspaceSymbolParams):
        await server.diagnostics.scanned.wait()
        return await server.core.run(workspace_symbols, server.core, params.query)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    async def go_to(params: types.DefinitionParams):
        path = await server.current_path(params.text_document.uri)
        if path is None:
            return None
        p = params.position
        return await server.core.run(definition, server.core, path, p.line, p.character) or None

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    async def mentions(params: types.ReferenceParams):
        path = await server.current_path(params.text_document.uri)
        if path is None:
            return None
        p = params.position
        return await server.core.run(references, server.core, path, p.line, p.character,
                                     params.context.include_declaration)

    @server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
    async def can_rename(params: types.PrepareRenameParams):
        path = await server.current_path(params.text_document.uri)
        if path is None:
            return None
        p = params.position
        return await server.core.run(prepare_rename, server.core, path, p.line, p.character)

    @server.feature(types.TEXT_DOCUMENT_RENAME, types.RenameOptions(prepare_provider=True))
    async def new_id(params: types.RenameParams):
        path = await server.current_path(params.text_document.uri)
        if path is None:
            return None
        versions = {}
        for open_path in list(server.core.overlays):
            version = server.core.core_version.get(open_path)
            if version is not None:
                versions[open_path] = version
        p = params.position
        return await server.core.run(rename, server.core, path, p.line, p.character, params.new_name, versions)

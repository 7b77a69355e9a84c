"""The everyday "not here" actions: "Ignore <CODE> for this story", "Ignore <CODE> in this file", and for a
vague term (ST701) "Accept '<word>' in this project".

The ignore actions insert the suppression comments the core's readers understand
(``storytransformer: ignore CODE`` above a story, ``storytransformer: ignore-file CODE`` for a file), in
the syntax of the file's format: ``# ...`` in text and Gherkin, ``<!-- ... -->`` in Markdown. CSV has no
comments: a story is silenced there with its suppression column, so no ignore action is offered.

"Accept" adds the word to ``accepted-words`` of the project's configuration file (the one the core loaded
for the document's folder, or a new ``.storytransformer.toml`` in the folder) with tomlkit, so the file
keeps its formatting and comments. The write is atomic (a temporary file in the same directory, then
``os.replace``) and is refused when the file changed since it was read or is open in the editor with
unsaved changes. The configuration is then reloaded (see :mod:`.config_reload`).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from storytransformer.config import CONFIG_FILES, ConfigError, from_table
from storytransformer.edits import StaleFileError, atomic_write, digest
from storytransformer.formats.gherkin import KEYWORD

from .convert import path_to_uri, uri_to_path

if TYPE_CHECKING:
    from .server_context import ServerContext

ACCEPT_WORD = "storytransformer.acceptWord"
FEATURE = ("feature", "ability", "business need")
FRONT_MATTER = re.compile(r"^(---|\+\+\+)\s*$")


class WriteRefused(Exception):
    """The configuration file was not written; the message says why."""


def comment(fmt: str, body: str) -> str | None:
    if fmt in ("text", "gherkin"):
        return f"# {body}"
    if fmt == "markdown":
        return f"<!-- {body} -->"
    return None


def _ending(line: str) -> str:
    for e in ("\r\n", "\n", "\r"):
        if line.endswith(e):
            return e
    return "\n"


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def story_comment(lines: list[str], fmt: str, story_line: int, code: str) -> tuple[int, str] | None:
    """Where and what to insert to silence ``code`` for the story starting at ``story_line``: (line, text)."""
    text = comment(fmt, f"storytransformer: ignore {code}")
    if text is None or not 0 <= story_line < len(lines):
        return None
    at = story_line
    if fmt == "gherkin":
        # The reader gives a feature the comments above its 'Feature:' line.
        for i in range(story_line, -1, -1):
            kw = KEYWORD.match(lines[i])
            if kw and kw.group(1).lower() in FEATURE:
                at = i
                break
    return at, _indent(lines[at]) + text + _ending(lines[at])


def file_comment(lines: list[str], fmt: str, code: str) -> tuple[int, str] | None:
    """Where and what to insert to silence ``code`` in the whole file: at the top, after a Gherkin
    ``# language:`` line or a Markdown front matter."""
    text = comment(fmt, f"storytransformer: ignore-file {code}")
    if text is None:
        return None
    at = 0
    if fmt == "gherkin" and lines and re.match(r"^\s*#\s*language\s*:", lines[0]):
        at = 1
    elif fmt == "markdown" and lines and FRONT_MATTER.match(lines[0]):
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == lines[0].strip()), None)
        at = end + 1 if end is not None else 0
    ending = _ending(lines[0]) if lines else "\n"
    if at >= len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
        return at, ending + text  # after a last line without an end of line
    return at, text + ending


def insert_edit(uri: str, version: int | None, at: tuple[int, str]) -> types.WorkspaceEdit:
    line, text = at
    pos = types.Position(line=line, character=0)
    return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
        edits=[types.TextEdit(range=types.Range(start=pos, end=pos), new_text=text)])])


def actions(server: "ServerContext", uri: str, pub, findings, diags, stories: dict) -> list[types.CodeAction]:
    """The ignore and accept actions for ``findings`` (with their diagnostics ``diags``) of one document whose
    stories by id are ``stories`` (read on the core's thread)."""
    doc = server.open_document(uri)
    path = uri_to_path(uri)
    if doc is None or path is None:
        return []
    from storytransformer.formats import detect_format

    fmt = detect_format(path, server.core.config_for(path)) or "text"
    lines = doc.lines
    out: list[types.CodeAction] = []
    seen: set = set()
    for finding, diag in zip(findings, diags):
        story = stories.get(finding.story_id)
        key = (finding.story_id, finding.code)
        if story is not None and key not in seen:
            seen.add(key)
            at = story_comment(lines, fmt, story.range.start.line, finding.code)
            if at is not None:
                out.append(types.CodeAction(
                    title=f"Ignore {finding.code} for this story", kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diag], edit=insert_edit(uri, pub.version, at)))
        if ("file", finding.code) not in seen:
            seen.add(("file", finding.code))
            at = file_comment(lines, fmt, finding.code)
            if at is not None:
                out.append(types.CodeAction(
                    title=f"Ignore {finding.code} in this file", kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diag], edit=insert_edit(uri, pub.version, at)))
        term = vague_term(finding, lines) if finding.code == "ST701" else None
        if isinstance(term, str) and term.strip() and ("word", term.lower()) not in seen:
            seen.add(("word", term.lower()))
            word = " ".join(term.lower().split())
            out.append(types.CodeAction(
                title=f"Accept '{word}' in this project", kind=types.CodeActionKind.QuickFix, diagnostics=[diag],
                command=types.Command(title=f"Accept '{word}' in this project", command=ACCEPT_WORD,
                                      arguments=[{"uri": uri, "word": word}])))
    return out


def vague_term(finding, lines: list[str]) -> str | None:
    """The word an ST701 finding flags: its data, or the text of its range (findings from the cache)."""
    term = (finding.data or {}).get("term")
    if isinstance(term, str):
        return term
    r = finding.range
    if r.start.line != r.end.line or r.start.line >= len(lines):
        return None
    return lines[r.start.line][r.start.character:r.end.character] or None


# -- the configuration file ------------------------------------------------------------------------


def target_file(server: "ServerContext", path: str) -> Path:
    """The project configuration file for the document at ``path``: the one the core loaded for its folder
    (never the user's own file), or a new ``.storytransformer.toml`` in the folder."""
    from storytransformer import trust

    project = server.core.project_for(path)
    source = project.file_config.source
    user = str(trust.user_config_file())
    if source and os.path.basename(source) in CONFIG_FILES and os.path.isfile(source) and source != user:
        return Path(source)
    root = server.core._root_of(path) or (project.roots[0] if project.roots else os.path.dirname(path))
    return Path(root) / ".storytransformer.toml"


def _key_style(table: Any) -> str:
    for key in ("accepted-words", "accepted_words"):
        if key in table:
            return key
    return "accepted_words" if any("_" in k for k in table) and not any("-" in k for k in table) else "accepted-words"


def add_accepted_word(path: Path, word: str) -> bool:
    """Add ``word`` to ``accepted-words`` in ``path`` (created when missing). False when it is already
    there. Raises :class:`WriteRefused` when the file cannot be edited safely."""
    import tomlkit

    try:
        original = path.read_bytes() if path.exists() else None
    except OSError as e:
        raise WriteRefused(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = original.decode("utf-8") if original is not None else ""
        doc = tomlkit.parse(text)
    except Exception as e:  # noqa: BLE001 - a broken file is never rewritten
        raise WriteRefused(f"{path}: cannot be edited: {e}") from None
    if path.name == "pyproject.toml" or "tool" in doc:
        tool = doc.setdefault("tool", tomlkit.table(is_super_table=True))
        table = tool.setdefault("storytransformer", tomlkit.table())
    else:
        table = doc
    key = _key_style(table)
    words = table.get(key)
    if words is None:
        words = tomlkit.array()
        table[key] = words
    elif not isinstance(words, list):
        raise WriteRefused(f"{path}: '{key}' is not a list; not written")
    if any(isinstance(w, str) and w.strip().lower() == word for w in words):
        return False
    words.append(word)
    new_text = tomlkit.dumps(doc)
    try:  # what we write must be a valid configuration
        data = tomllib.loads(new_text)
        from_table(data.get("tool", {}).get("storytransformer", {}) if table is not doc else data, str(path))
    except (tomllib.TOMLDecodeError, ConfigError) as e:
        raise WriteRefused(f"{path}: the edited file would not be valid ({e}); not written") from None
    _replace_atomically(path, new_text, original)
    return True


def _replace_atomically(path: Path, text: str, original: bytes | None) -> None:
    """The core's safe write: atomic, and refused when the file changed since it was read."""
    if original is None and path.exists():
        raise WriteRefused(f"{path} was created while it was edited; not written")
    try:
        atomic_write(str(path), text, expected_digest=None if original is None else digest(original))
    except (StaleFileError, OSError) as e:
        raise WriteRefused(str(e)) from None


def register(server: "ServerContext") -> None:
    @server.command(ACCEPT_WORD)
    async def accept_word(*args) -> dict:
        arg = args[0] if args else None
        if isinstance(arg, list) and len(arg) == 1:  # some clients wrap the arguments in one list
            arg = arg[0]
        if not isinstance(arg, dict) or not isinstance(arg.get("uri"), str) or not isinstance(arg.get("word"), str):
            raise ValueError("expected {uri: string, word: string}")
        path = uri_to_path(arg["uri"])
        word = " ".join(arg["word"].lower().split())
        if path is None or not word:
            raise ValueError("expected a file: URI and a word")
        target = target_file(server, path)
        open_doc = server.open_document(path_to_uri(str(target)))
        try:
            if open_doc is not None and target.exists() and open_doc.source.encode("utf-8") != target.read_bytes():
                raise WriteRefused(f"{target} has unsaved changes in the editor; save it first")
            changed = await server.core.run(add_accepted_word, target, word)
        except WriteRefused as e:
            server.show(f"'{word}' not accepted: {e}", types.MessageType.Error)
            return {"written": False, "file": str(target), "reason": str(e)}
        if changed:
            server.show(f"'{word}' accepted in {target}", types.MessageType.Info)
        await server.config_reload.reload()
        return {"written": changed, "file": str(target)}

"""Duplicates caught while they are typed: the stories that already ask what the line being typed asks.

The completion and the inline completion ask the daemon (``similar/typing``), which holds the embedding
model and the workspace's index and embeds only the typed line. Nothing here waits long or starts a
daemon: without a connected daemon, or when it does not answer within :data:`TIMEOUT_S`, typing goes
on with the template suggestions alone. A match in the document being typed is checked against the
document's current text (the daemon saw it a keystroke or a few ago), so the line being typed, or an
older version of it, is never offered.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsprotocol import types

from storytransformer.formats.base import normalise
from storytransformer.places import place
from storytransformer.similarity.compared_parts import STOP_WORDS
from storytransformer.story import Part, Story

from .model_adapter import ModelUnavailable

if TYPE_CHECKING:
    from .server_context import ServerContext

log = logging.getLogger(__name__)
TIMEOUT_S = 1.0  # a completion that waits longer is worse than none
CACHE_S = 1.5  # one keystroke's completion and inline completion share an answer; the index moves on
_WORD = re.compile(r"\S+")
_PUNCT = ".,;:!?\"'()[]"


@dataclass(frozen=True)
class Asked:
    """A story that already asks what the typed line asks."""

    story: Story
    similarity: float
    where: str  # file:line, the file relative to its workspace folder

    @property
    def heading(self) -> str:
        """"Already asked" when the whole texts are close; the rest are offered as "Maybe asked"."""
        from storytransformer.similarity.typing_lookup import is_confident

        return "Already asked" if is_confident(self.similarity) else "Maybe asked"


def looks_like_story(before: str) -> bool:
    """Worth asking the daemon: the line is a story with a means under way, as the daemon itself will
    parse it (the core's reader, every means marker it knows: "I want to", "I'd like to", "I need" ...)."""
    from storytransformer.similarity.typing_lookup import typed_story

    return typed_story(before) is not None


class TypingDuplicates:
    """Asks the daemon, with a short-lived cache: the completion and the inline completion of one keystroke
    ask for the same line, but a later keystroke must see what the index has learnt since."""

    def __init__(self, server: "ServerContext"):
        self.server = server
        self._recent: OrderedDict[tuple[str, int, str], tuple[float, list[Asked]]] = OrderedDict()

    @property
    def available(self) -> bool:
        s = self.server
        return s.semantic.wanted and (s.semantic.started or s.model.connected)

    async def find(self, path: str, line: int, text: str) -> list[Asked]:
        """Stories already asking what ``text`` (the line ``line`` of ``path`` up to the cursor) asks."""
        if not self.available or not looks_like_story(text):
            return []
        key = (path, line, text)
        now = time.monotonic()
        hit = self._recent.get(key)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        try:
            reply = await self.server.model.request("similar/typing", {"text": text, "path": path, "line": line},
                                                   spawn=False, timeout=TIMEOUT_S)
        except ModelUnavailable as e:
            log.debug("no duplicate lookup while typing: %s", e)
            return []
        found = self._current(path, line, _matches(reply), self._roots())
        if isinstance(reply, dict) and reply.get("ready"):  # not ready yet: ask again on the next keystroke
            self._recent[key] = (now, found)
            self._recent.move_to_end(key)
        while len(self._recent) > 16:
            self._recent.popitem(last=False)
        return found

    def _roots(self) -> list[str]:
        return list(self.server.core.roots)

    def _current(self, path: str, line: int, matches: list[tuple[Story, float]], roots: list[str]) -> list[Asked]:
        """The matches that are still where the daemon saw them (open documents may have changed since)."""
        out = []
        for story, sim in matches:
            if story.file == path and story.range.contains_line(line):
                continue  # the line being typed
            doc = self.server.open_document_for_path(story.file)
            if doc is not None:
                lines = doc.lines
                r = story.range
                if r.end.line >= len(lines):
                    continue
                here = "".join(lines[r.start.line:r.end.line + 1])
                if normalise(story.text) not in normalise(here):
                    continue  # moved or edited since the daemon indexed it
            root = max((r for r in roots if story.file.startswith(r.rstrip(os.sep) + os.sep)), key=len, default=None)
            out.append(Asked(story, sim, place(story.file, story.line, root)))
        return out


def of(server: "ServerContext") -> TypingDuplicates:
    """The server's one lookup (shared by the completion and the inline completion, and their cache)."""
    found = getattr(server, "typing_duplicates", None)
    if found is None:
        found = server.typing_duplicates = TypingDuplicates(server)  # type: ignore[attr-defined]
    return found


def _matches(reply) -> list[tuple[Story, float]]:
    from storytransformer_server.daemon.wire import range_from_wire

    out = []
    for m in (reply or {}).get("matches", ()) if isinstance(reply, dict) else ():
        try:
            d, sim = m["story"], float(m["similarity"])
            r = range_from_wire(d["range"])
            means = d.get("means")
            story = Story(id=d["id"], file=d["file"], text=d["text"], range=r,
                          means=Part("means", means, r, "", r) if isinstance(means, str) and means else None,
                          explicit_id=bool(d.get("explicit_id", False)), format=d.get("format") or "text")
        except (KeyError, TypeError, ValueError) as e:
            log.warning("ignoring a malformed match from the daemon (%s): %r", e, m)
            continue
        out.append((story, sim))
    return out


def continuation(typed: str, story: Story) -> str | None:
    """What completes ``typed`` (the line up to the cursor) into what ``story`` asks: the rest of the story
    after the word of its means that the last typed word is (or begins, while it is being typed). None
    when the last typed word is not in the story's means: inserting would then make a line that neither
    story says, and only the completion list's hint is right."""
    means = story.means.text if story.means is not None else None
    if not means or not typed.strip():
        return None
    at = story.text.find(means)
    if at < 0:
        return None
    typed_words = [w.strip(_PUNCT).lower() for w in typed.split()]
    last = typed_words[-1]
    inside_word = not typed[-1:].isspace()
    if not last:
        return None
    words = list(_WORD.finditer(means))
    for j, token in enumerate(words):
        core = token.group().strip(_PUNCT)
        lead = len(token.group()) - len(token.group().lstrip(_PUNCT))
        word = core.lower()
        exact = word == last
        if not exact and not (inside_word and word.startswith(last)):
            continue
        if last in STOP_WORDS and (len(typed_words) < 2 or j == 0 or
                                   words[j - 1].group().strip(_PUNCT).lower() != typed_words[-2]):
            continue  # "a", "the": only together with the word before them
        cut = token.start() + lead + (len(core) if exact else len(last))
        rest = story.text[at + cut:]
        if not inside_word:
            rest = rest.lstrip()
        return rest if rest.strip() else None
    return None


def documentation(a: Asked, markdown: bool) -> types.MarkupContent | str:
    """The story and what to do about it; Markdown only for a client that says it renders it."""
    if not markdown:
        return (f"{a.heading} at {a.where} (similarity {a.similarity:.2f}):\n{a.story.text}\n\n"
                "Reuse that story or merge the two instead of adding a duplicate. Choosing this inserts nothing.")
    return types.MarkupContent(kind=types.MarkupKind.Markdown, value=(
        f"**{a.heading}** at `{a.where}` (similarity {a.similarity:.2f}):\n\n> {a.story.text}\n\n"
        "Reuse that story or merge the two instead of adding a duplicate. Choosing this inserts nothing."))


def client_renders_markdown(capabilities: types.ClientCapabilities | None) -> bool:
    td = capabilities.text_document if capabilities else None
    item = td.completion.completion_item if td and td.completion else None
    return bool(item and item.documentation_format and types.MarkupKind.Markdown in item.documentation_format)


def completion_items(found: list[Asked], line: int, character: int, markdown: bool = True) -> list[types.CompletionItem]:
    """One item per story already asking the same: it names the story and inserts nothing. "Already asked"
    when the whole texts are close, "Maybe asked" for the others the lookup offers (half a line often
    says too little to be sure, and the list is where the writer looks)."""
    here = types.Range(start=types.Position(line, character), end=types.Position(line, character))
    return [types.CompletionItem(
        label=f"{a.heading}: {a.where}", kind=types.CompletionItemKind.Reference,
        detail=f"similarity {a.similarity:.2f} · {a.story.text}", documentation=documentation(a, markdown),
        sort_text=f"!{i:03d}", preselect=i == 0 or None,
        text_edit=types.TextEdit(range=here, new_text=""))
        for i, a in enumerate(found)]


def inline_items(found: list[Asked], before: str, line: int, character_utf16: int) -> list[types.InlineCompletionItem]:
    """Ghost text completing the typed line with what the existing story asks beyond it, for each match
    whose means continues the words typed (accepting it gives a line that the duplicate finding then
    names). Matches the typed words do not lead into are left to the completion list's hint."""
    at = types.Position(line, character_utf16)
    out = []
    for a in found:
        rest = continuation(before, a.story)
        if rest:
            out.append(types.InlineCompletionItem(insert_text=rest, range=types.Range(start=at, end=at)))
    return out



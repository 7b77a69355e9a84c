"""How much of an open document the server checks.

A 10 MB document got no diagnostics in 8 minutes, and blocked every other file
meanwhile. The server checks an open document up to its first ``maxStories``
stories and its first ``maxBytes`` bytes (whole lines), and says so with one
information diagnostic on the first line, naming the setting that raises the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from storytransformer.config import Config
from storytransformer.formats import read_source
from storytransformer.lines import line_starts


NOTICE_CODE = "large-document"


def small(text: str, max_stories: int, max_bytes: int) -> bool:
    """Certainly within both limits, without reading it (a story takes at least one line)."""
    if len(text) * 4 > max_bytes and len(text.encode("utf-8")) > max_bytes:
        return False
    return text.count("\n") + text.count("\r") < max_stories


@dataclass(frozen=True)
class Bounded:
    text: str  # what is checked: the document, or its first whole lines
    notice: str | None  # what was left out, and the setting that raises the limit (None: nothing)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def bound(path: str, text: str, config: Config, max_stories: int, max_bytes: int) -> Bounded:
    """The part of ``text`` to check. Runs on the core's worker thread (it reads the stories)."""
    size = len(text) if len(text) * 4 <= max_bytes else len(text.encode("utf-8"))
    cut = text
    notices = []
    if size > max_bytes:
        prefix = text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
        starts = line_starts(prefix)
        cut = prefix[: starts[-1]] if len(starts) > 1 else ""  # whole lines only
        notices.append(f"only the first {_mb(max_bytes)} of {_mb(size)} were checked "
                       f"(setting storytransformer.maxBytes)")
    try:
        stories = read_source(path, cut, config).stories
    except ValueError:
        return Bounded(cut, "; ".join(notices) or None)  # the reader's error is shown by the check
    if len(stories) > max_stories:
        end_line = stories[max_stories - 1].range.end.line
        starts = line_starts(cut)
        cut = cut[: starts[end_line + 1]] if end_line + 1 < len(starts) else cut
        total = f"{len(stories):,}" + ("+" if size > max_bytes else "")
        notices.insert(0, f"only the first {max_stories:,} of {total} stories were checked "
                          f"(setting storytransformer.maxStories)")
    if not notices:
        return Bounded(text, None)
    return Bounded(cut, "Large document: " + "; ".join(notices) + ". Raise the setting to check more.")

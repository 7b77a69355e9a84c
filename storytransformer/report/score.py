"""The quality score of a file (and of the whole backlog).

score = 100 x (stories with no finding of severity warning or error) / stories

Info and hint findings are advice, so they do not lower the score; a story with
three warnings counts as much as a story with one (the score says how much of the
backlog is ready, not how many problems it has). A file without stories has no score.
"""

from __future__ import annotations

from typing import Callable, Hashable, Iterable, Mapping

BLOCKING = frozenset({"error", "warning"})


def story_is_clean(severities: Iterable[str]) -> bool:
    return not any(s in BLOCKING for s in severities)


def by_story_id(f: Mapping) -> Hashable:
    return f["story_id"]


def quality_score(story_keys: Iterable[Hashable], findings: Iterable[Mapping],
                  key: Callable[[Mapping], Hashable] = by_story_id) -> float | None:
    """Score of the stories ``story_keys`` given finding dicts (``story_id``, ``severity``);
    ``key(finding)`` names the story a finding is about (its id by default; use (file, id)
    across files). Findings of other stories are ignored. ``None`` when there are no stories."""
    ids = list(story_keys)
    if not ids:
        return None
    flagged = {key(f) for f in findings if f.get("severity") in BLOCKING}
    clean = sum(1 for i in ids if i not in flagged)
    return round(100.0 * clean / len(ids), 1)

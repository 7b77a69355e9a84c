"""Semantic findings for ``storytransformer check``, the language server and the daemon.

One finding per story and relation (all its semantic duplicates in one ST603,
all its merge candidates in one ST604), so a cluster of five stories gives five
findings rather than twenty. Exact and normalised duplicates (ST601/ST602,
reported by the core) share an index slot and never appear here.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from typing import Callable, Iterable

from ..file_ignores import codes_ignored
from ..findings import Finding, Related, Severity
from ..places import story_place
from ..story import Story
from .classify import Relation
from .semantic_rules import OVERLAP, SAME_GOAL, SEMANTIC_DUPLICATE

CODES = {Relation.DUPLICATE: SEMANTIC_DUPLICATE, Relation.OVERLAP: OVERLAP, Relation.SAME_GOAL: SAME_GOAL}
WHAT = {Relation.DUPLICATE: "Semantic duplicate of", Relation.OVERLAP: "Overlaps (merge candidate)",
        Relation.SAME_GOAL: "Same means for another role as"}
# What to do about it, after the stories it names.
HOW = {Relation.DUPLICATE: "keep one of them, or merge them", Relation.OVERLAP: "merge them into one story that keeps both needs",
       Relation.SAME_GOAL: "merge them into one story for both roles, or say why each role needs its own"}
MAX_LISTED = 3


def _short(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _place(story: Story, root: str | None = None) -> str:
    """Where a person finds the other story: file:line relative to the workspace, with the story's own id
    when the format gives one (US-12)."""
    return story_place(story, root)


def enabled_codes(config) -> dict[str, Severity]:
    """Codes this configuration turns on, with their severities."""
    from ..lint import enabled_rules, severity_of

    return {r.code: severity_of(r, config) for r in enabled_rules(config) if r.code in CODES.values()}


def semantic_findings(workspace, config=None, paths: Iterable[str] | None = None,
                      progress: Callable | None = None, index=None) -> list[Finding]:
    """ST603-ST605 findings for the stories of ``paths`` (default: every file), compared
    against the whole workspace. ``index`` lets a long-lived caller (the daemon) reuse its
    index; it is synchronised with the workspace first. ``progress(done, total)`` is
    called while stories are embedded (it may also be a rich Progress)."""
    from .index import SimilarityIndex

    config = config or workspace.config
    on = enabled_codes(config)
    if not on or not getattr(config.similarity, "enabled", True):
        return []
    report = progress_callback(progress)
    if index is None:
        index = _reusable_index(workspace, config.similarity)
    if index is None:
        index = SimilarityIndex.build(workspace.stories(), config.similarity, progress=report)
        _remember(workspace, config.similarity, index)
    else:
        index.sync(workspace.stories(), progress=report)
    index.save_cache()
    wanted = set(paths) if paths is not None else None
    suppressed_files = {p: f.suppressed | codes_ignored(config, p) for p, f in workspace.files.items()}
    grouped: dict[tuple[tuple[str, str], Relation], list[tuple[Story, float]]] = defaultdict(list)
    stories: dict[tuple[str, str], Story] = {}
    for s, o, pair in index.related():
        for me, other in ((s, o), (o, s)):
            if wanted is None or me.file in wanted:
                key = (me.file, me.id)
                stories[key] = me
                grouped[(key, pair.relation)].append((other, pair.similarity))
    out: list[Finding] = []
    root = getattr(config, "root", None)
    for (key, relation), others in grouped.items():
        story = stories[key]
        found = relation_finding(story, relation, others, on, suppressed_files.get(story.file, frozenset()), root,
                                 index)
        if found is not None:
            out.append(found)
    return sorted(out, key=Finding.sort_key)


def relation_finding(story: Story, relation: Relation, others: list[tuple[Story, float]], on: dict[str, Severity],
                     file_suppressed: frozenset[str], root: str | None, index=None) -> Finding | None:
    """The one finding of ``story`` for ``relation`` with ``others`` (story, similarity), or None when the
    code is off or suppressed. Shared by the full computation and the incremental refresh
    (:mod:`.incremental_findings`), so both say exactly the same thing. Sorts ``others`` in place.
    A duplicate's data carries, with ``index``, the cosine of its benefit and each other story's
    (``benefit_cosines``, in the order of ``related``) and of its means and theirs (``means_cosines``): the
    editor's merge sets a benefit aside only for one that says it (:mod:`.benefits`) and has no model of
    its own to ask."""
    code = CODES[relation]
    if code not in on:
        return None
    if story.is_suppressed(code) or code in file_suppressed or "*" in file_suppressed:
        return None
    others.sort(key=lambda x: (-x[1], x[0].file, x[0].line))
    listed = ", ".join(f"{_place(o, root)} ({score:.2f})" for o, score in others[:MAX_LISTED])
    more = f" and {len(others) - MAX_LISTED} more" if len(others) > MAX_LISTED else ""
    related = tuple(Related(o.file, o.range, o.id, f"similarity {score:.2f}: {_short(o.text)}") for o, score in others)
    data = {"similarity": round(others[0][1], 4), "relation": relation.value}
    if index is not None and relation is Relation.DUPLICATE:
        data["benefit_cosines"] = [None if c is None else round(c, 4)
                                   for c in (index.ends_cosine(story, o) for o, _ in others)]
        data["means_cosines"] = [None if c is None else round(c, 4)
                                 for c in (index.means_cosine(story, o) for o, _ in others)]
    return Finding.on(story, code, "unique", on[code], f"{WHAT[relation]} {listed}{more}; {HOW[relation]}",
                      related=related, data=data)


def trimmed(finding: Finding, keep: list[int], root: str | None = None) -> Finding:
    """``finding`` (of :func:`relation_finding`) naming only its related stories at the indexes ``keep``: the
    message lists those, and the per-story data (``benefit_cosines``, ``means_cosines``) stays aligned with
    ``related``. Used when a judge takes some of a story's pairs back (:mod:`..model_checking`)."""
    import re
    from dataclasses import replace

    from ..places import place

    related = tuple(finding.related[i] for i in keep)
    data = dict(finding.data)
    for key in ("benefit_cosines", "means_cosines"):
        if isinstance(data.get(key), list) and len(data[key]) == len(finding.related):
            data[key] = [data[key][i] for i in keep]
    scores = []
    for r in related:
        m = re.match(r"similarity ([0-9.]+)", r.message)
        scores.append(float(m.group(1)) if m else None)
    if scores and scores[0] is not None:
        data["similarity"] = scores[0]
    try:
        relation = Relation(data.get("relation"))
    except ValueError:
        return replace(finding, related=related, data=data)

    def label(r) -> str:
        where = place(r.file, r.range.start.line, root)
        return f"{r.story_id} at {where}" if f"{r.story_id} at {where}" in finding.message else where

    listed = ", ".join(label(r) + ("" if sc is None else f" ({sc:.2f})") for r, sc in zip(related[:MAX_LISTED], scores))
    more = f" and {len(related) - MAX_LISTED} more" if len(related) > MAX_LISTED else ""
    return replace(finding, related=related, data=data, message=f"{WHAT[relation]} {listed}{more}; {HOW[relation]}")


_INDEXES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # workspace -> (settings, index)


def settings_key(cfg) -> tuple:
    """The similarity settings as a comparable value: an index or findings built under other ones are stale."""
    return tuple(sorted((k, repr(v)) for k, v in vars(cfg).items()))


def _reusable_index(workspace, cfg):
    """The index of the previous call for this same workspace object and settings, so a
    language server re-checking one file re-embeds only what changed."""
    try:
        settings, index = _INDEXES[workspace]
    except (KeyError, TypeError):
        return None
    return index if settings == settings_key(cfg) else None


def _remember(workspace, cfg, index) -> None:
    try:
        _INDEXES[workspace] = (settings_key(cfg), index)
    except TypeError:  # not weak-referenceable: just don't reuse
        pass


def progress_callback(progress):
    """Accept a plain ``f(done, total)`` or a rich ``Progress`` (as the check command passes)."""
    if progress is None:
        return None
    if callable(progress) and not hasattr(progress, "add_task"):
        return progress
    state = {}

    def report(done: int, total: int) -> None:
        if total < 64:
            return
        if "task" not in state:
            state["task"] = progress.add_task("Embedding stories", total=total)
        progress.update(state["task"], completed=done, total=total)

    return report

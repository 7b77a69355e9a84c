"""Everything the report shows, as plain JSON-ready data (also embedded in the page, so a
later ``report --compare`` can read it back).

Findings come from the linter and the similarity package, exactly as ``check`` reports
them; clusters from the similarity index; each cluster's merge from the engine's
grounded proposer (never written here).
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from typing import Callable

from ..checking import CheckOptions, check
from ..findings import Finding
from ..output import display_path, finding_to_json
from ..rules import RULES
from ..workspace import Workspace
from .score import quality_score

log = logging.getLogger(__name__)

DATA_FORMAT = "storytransformer-report"
DATA_VERSION = 1
SEVERITIES = ("error", "warning", "info", "hint")
NO_PROPOSAL = "no grounded merge proposal"


@dataclass
class Options:
    semantic: bool = True  # similarity findings and clusters (loads the embedding model)
    model: bool = True  # rank merge proposals with the language model
    generate: bool = False  # also ask the model for its own merge (slow on a CPU)
    max_merges: int = 50  # clusters that get a merge proposal (the largest first)
    model_seconds: float = 120.0  # time for the model's ranking; later clusters get unranked proposals
    estimate: bool = True  # the size panel (loads the tokenizer)
    use_cache: bool = True


class Steps:
    """Reports progress to a rich Progress (or nowhere): one task per step."""

    def __init__(self, progress=None):
        self.progress = progress
        self._task = None

    def start(self, description: str, total: int | None = None) -> None:
        if self.progress is None:
            return
        if self._task is not None:
            self.progress.update(self._task, visible=False)
        self._task = self.progress.add_task(description, total=total)

    def callback(self, description: str) -> Callable[[int, int], None] | None:
        """A ``f(done, total)`` for the similarity index's embedding loop."""
        if self.progress is None:
            return None

        def report(done: int, total: int) -> None:
            if self._task is None or self.progress.tasks[-1].description != description:
                self.start(description, total)
            self.progress.update(self._task, completed=done, total=total)

        return report

    def advance(self, n: int = 1) -> None:
        if self.progress is not None and self._task is not None:
            self.progress.advance(self._task, n)


def build_report(paths: list[str], config, options: Options | None = None, *, settings=None, progress=None,
                 warn: Callable[[str], None] = lambda m: None) -> dict:
    """The report's data for ``paths``. ``warn`` receives problems that do not stop the report
    (an embedding model or language model that cannot load)."""
    options = options or Options()
    steps = Steps(progress)
    steps.start("Checking stories")
    notes: list[str] = []
    wanted = options.semantic and config.similarity.enabled

    def say(level: str, message: str) -> None:  # a broken model must not hide the deterministic findings
        warn(message)
        if message.startswith("semantic check skipped: "):
            notes.append(f"Semantic duplicates and clusters skipped: {message.split(': ', 1)[1]}")

    # the one check entry point, as `check` runs it; the index stays for the clusters
    result = check(config, [str(p) for p in paths], options=CheckOptions(
        semantic=wanted, use_cache=options.use_cache, keep_index=True, progress=steps.callback("Embedding stories")),
        say=say)
    ws, findings, index = result.workspace, result.findings, result.index
    if options.semantic and not config.similarity.enabled:
        notes.append("Semantic duplicates are turned off in the configuration (similarity.enabled = false).")
    data = snapshot(ws, findings, paths, result.problems)
    data["semantic"] = index is not None
    data["clusters"], data["merges"] = ([], None) if index is None else _clusters(ws, index, config, options, steps, warn, notes)
    data["size"] = None
    if options.estimate:
        steps.start("Counting tokens", total=len(ws.files))
        try:
            from .estimate import estimate_backlog

            data["size"] = estimate_backlog(ws, config, settings, progress=steps.advance)
        except Exception as e:  # the size panel is optional: say why it is missing
            warn(f"size estimate skipped: {e}")
            notes.append(f"Size estimate skipped: {e}")
    data["notes"] = notes
    return data


def snapshot(ws: Workspace, findings: list[Finding], paths: list[str], problems: list | None = None) -> dict:
    """Findings, per-rule and per-file totals and scores of a checked workspace.

    Stories are shown by file:line (``place``) and by their own id only where the format gives one
    (``story_label``); ``story_id`` stays in the data as the key ``report --compare`` matches on."""
    from .. import __version__

    explicit = {(s.file, s.id): s.id for s in ws.stories() if s.explicit_id}
    rows = [{**finding_to_json(f), "story_label": explicit.get((f.file, f.story_id))} for f in findings]
    by_file: dict[str, list[dict]] = defaultdict(list)
    for f, row in zip(findings, rows):
        by_file[f.file].append(row)
    files = []
    for path in sorted(ws.files):
        src = ws.files[path]
        mine = by_file.get(path, [])
        sev = Counter(r["severity"] for r in mine)
        files.append({"file": display_path(path), "stories": len(src.stories),
                      "words": sum(len(s.text.split()) for s in src.stories), "findings": len(mine),
                      "by_severity": {s: sev.get(s, 0) for s in SEVERITIES},
                      "score": quality_score([s.id for s in src.stories], mine)})
    counts = Counter(r["code"] for r in rows)
    rules = [{"code": code, "name": RULES[code].name if code in RULES else code.lower(),
              "criterion": RULES[code].criterion if code in RULES else "",
              "severity": next(r["severity"] for r in rows if r["code"] == code), "count": n}
             for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    sev = Counter(r["severity"] for r in rows)
    keys = [(display_path(s.file), s.id) for s in ws.stories()]
    return {
        "format": DATA_FORMAT, "version": DATA_VERSION, "tool_version": __version__,
        "generated": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "inputs": [display_path(str(p)) for p in paths],
        "totals": {"files": len(ws.files), "stories": len(keys), "words": sum(f["words"] for f in files),
                   "findings": len(rows), "by_severity": {s: sev.get(s, 0) for s in SEVERITIES},
                   "score": quality_score(keys, rows, key=lambda r: (r["file"], r["story_id"]))},
        "problems": [str(p) for p in sorted(ws.problems.values() if problems is None else problems,
                                            key=lambda p: p.path)],
        "rules": rules, "files": files, "findings": rows,
    }


def _clusters(ws, index, config, options: Options, steps: Steps, warn, notes: list[str]) -> tuple[list[dict], dict]:
    from ..similarity.classify import Relation, classify

    clusters = index.clusters([Relation.DUPLICATE, Relation.OVERLAP])
    proposer, merges = _proposer(config, options, warn, notes)
    unranked = None if merges["ranked_by"] is None else _unranked(config)
    from ..engine import Deadline

    budget = Deadline.after(options.model_seconds)
    steps.start("Proposing merges", total=min(len(clusters), options.max_merges))
    out = []
    for n, c in enumerate(clusters, 1):
        members = list(c.stories)
        edges = []
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                if a.text.strip().lower() == b.text.strip().lower():
                    edges.append({"a": a.id, "b": b.id, "similarity": 1.0, "relation": "same-text"})
                    continue
                sc = index.pair_scores((a.file, a.id), (b.file, b.id))
                rel = classify(sc, index.thresholds)
                if rel in (Relation.DUPLICATE, Relation.OVERLAP):
                    edges.append({"a": a.id, "b": b.id, "similarity": round(sc.similarity, 4),
                                  "relation": rel.value})
        merge, why = None, NO_PROPOSAL
        if n > options.max_merges:
            why = f"not proposed: only the {options.max_merges} largest clusters get a merge proposal"
        else:
            ranking = unranked is not None and proposer is not unranked
            merge, why = (None, "deadline") if ranking and budget.expired else \
                _merge(proposer, members, budget if ranking else None)
            if why == "deadline":  # the model's time is up: this and later clusters get unranked proposals
                done = f"ranked the merges of the first {n - 1} clusters" if n > 1 else "ranked no merge"
                notes.append(f"The model {done} within its {options.model_seconds:g} s budget (--model-seconds); "
                             "the other merges are not ranked.")
                proposer = unranked
                merge, why = _merge(proposer, members)
            steps.advance()
        out.append({"id": f"C{n}", "size": len(c), "cohesion": c.cohesion,
                    "representative": c.representative.id,
                    "stories": [{"story_id": s.id, "story_label": s.id if s.explicit_id else None,
                                 "file": display_path(s.file), "line": s.line + 1, "text": s.text}
                                for s in members],
                    "edges": edges, "merge": merge, "merge_note": why})
    return out, merges


def _proposer(config, options: Options, warn, notes: list[str]):
    """(engine, description): the engine that proposes merges, loaded once for the report."""
    from ..engine import EngineError
    from ..engine.proposer import GroundedEngine

    cfg = replace(config, engine=replace(config.engine, generate=options.generate))
    if options.model:
        try:
            from ..engine import create_engine

            engine = create_engine(cfg)
            status = engine.load()
            return engine, {"ranked_by": status.model, "generated": options.generate}
        except (EngineError, OSError, ImportError) as e:
            warn(f"language model not loaded, merges are not ranked: {e}")
            notes.append(f"Merge proposals are not ranked by a model: {e}")
    return GroundedEngine(cfg), {"ranked_by": None, "generated": False}


def _unranked(config):
    """The engine's proposer without a model: grounded candidates in the proposer's own order."""
    from ..engine.proposer import GroundedEngine

    return GroundedEngine(replace(config, engine=replace(config.engine, generate=False)))


def _merge(proposer, members, deadline=None) -> tuple[dict | None, str]:
    """(merge, "") or (None, why); why is "deadline" when ``deadline`` passed during the call."""
    from ..engine import DeadlineExceeded, EngineError

    try:
        proposals = proposer.propose_merge(members, deadline=deadline)
    except DeadlineExceeded:
        return None, "deadline"
    except EngineError as e:
        return None, f"{NO_PROPOSAL} ({e})"
    if not proposals:
        return None, NO_PROPOSAL
    p = proposals[0]
    return {"text": p.text, "origin": p.origin, "provenance": dict(p.provenance), "ranked": p.score is not None,
            "score": None if p.score is None else round(p.score, 4), "alternatives": len(proposals) - 1}, ""

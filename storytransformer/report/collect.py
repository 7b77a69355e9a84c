"""Everything the report shows, as plain JSON-ready data (also embedded in the page, so a
later ``report --compare`` can read it back).

Findings come from the linter and the similarity package, exactly as ``check`` reports
them; clusters from the similarity index; each cluster's merge from the engine's
grounded proposer (never written here).
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from typing import Callable

from ..checking import CheckOptions, check
from ..findings import Finding
from ..output import display_path, finding_to_json
from ..rules import RULES
from ..workspace import Workspace
from .merges import NO_PROPOSAL  # noqa: F401  (re-exported: older callers import it from here)
from .score import quality_score

log = logging.getLogger(__name__)

DATA_FORMAT = "storytransformer-report"
DATA_VERSION = 1
SEVERITIES = ("error", "warning", "info", "hint")


@dataclass
class Options:
    semantic: bool = True  # similarity findings and clusters (loads the embedding model)
    model: bool = True  # rank merge proposals with the language model
    generate: bool = False  # also ask the model for its own merge (slow on a CPU)
    max_merges: int | None = None  # cap on the clusters that get a merge proposal (largest first); None = all
    model_seconds: float = 120.0  # time for the model's ranking; clusters it does not reach keep the deterministic merge
    estimate: bool = True  # the size panel (loads the tokenizer)
    use_cache: bool = True
    model_checks: bool = False  # also the model rules (ST606 first), as `check --model-checks` runs them
    model_check_questions: int = 200
    model_check_seconds: float = 300.0
    model_check_thresholds: dict | None = None  # {code: P(yes)} for a model whose own were measured


class Steps:
    """Reports progress to a rich Progress (or nowhere): one task per step; and times each step
    (``timings``: step name -> seconds), which the report's data keeps so a slow report shows where
    its time went."""

    def __init__(self, progress=None):
        self.progress = progress
        self._task = None
        self._step: str | None = None
        self._since = time.perf_counter()
        self.timings: dict[str, float] = {}

    def _close(self) -> None:
        now = time.perf_counter()
        if self._step is not None:
            self.timings[self._step] = round(self.timings.get(self._step, 0.0) + now - self._since, 3)
        self._since = now

    def start(self, description: str, total: int | None = None, step: str | None = None) -> None:
        """A new step; ``step`` names it in :attr:`timings` (default: the description's first two words)."""
        self._close()
        self._step = step or " ".join(description.split()[:2]).lower()
        if self.progress is None:
            return
        if self._task is not None:
            self.progress.update(self._task, visible=False)
        self._task = self.progress.add_task(description, total=total)

    def finish(self) -> dict[str, float]:
        self._close()
        self._step = None
        return dict(self.timings)

    def callback(self, description: str) -> Callable[[int, int], None]:
        """A ``f(done, total)`` for the similarity index's embedding loop (which starts its step)."""

        def report(done: int, total: int) -> None:
            if self._step != " ".join(description.split()[:2]).lower():
                self.start(description, total)
            if self.progress is not None and self._task is not None:
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
    resident = None  # the model checks' engine, loaded: the merges' ranking reuses it instead of loading again
    if options.model_checks and ws is not None:
        findings, resident = _with_model_checks(ws, findings, index, config, options, steps, warn, notes,
                                                keep=options.model and index is not None)  # clusters to rank
    data = snapshot(ws, findings, paths, result.problems)
    data["semantic"] = index is not None
    data["clusters"], data["merges"], data["merge_summary"] = ([], None, None) if index is None else \
        _clusters(ws, index, config, options, steps, warn, notes, resident)
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
    data["timings"] = steps.finish()
    return data


def _with_model_checks(ws, findings, index, config, options: Options, steps: Steps, warn, notes: list[str],
                       keep: bool):
    """(``findings`` with the model checks' added and the semantic duplicates the judge model takes back left out
    (:mod:`..model_checking`), the engine when it loaded and ``keep`` (merges to rank), else None); what ran and
    where it stopped goes in the report's notes."""
    from .. import model_checking

    steps.start("Model checks", step="asking the model")
    engine = None
    if model_checking.selected_codes(config):
        try:
            from ..engine import create_engine

            engine = create_engine(_ranking_config(config, options))  # scoring only here; the ranking's settings
        except Exception:  # noqa: BLE001 - the run says why, in its own words
            engine = None
    outcome = model_checking.run(config, list(ws.stories()), findings, engine=engine, index=index,
                                 semantic=index is not None, max_questions=options.model_check_questions,
                                 seconds=options.model_check_seconds, thresholds=options.model_check_thresholds)
    if engine is not None and not (keep and outcome.ran and engine.loaded):
        engine.unload()
        engine = None
    for level, text in outcome.notes:
        if level == "warning":
            warn(f"model checks: {text}")
        notes.append(f"Model checks: {text}.")
    return sorted(outcome.applied_to(findings), key=Finding.sort_key), engine


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


def _clusters(ws, index, config, options: Options, steps: Steps, warn, notes: list[str],
              resident=None) -> tuple[list[dict], dict, dict]:
    """Every cluster with its edges and its merge proposal (see :mod:`.merges`); ``resident``: an engine already
    loaded for the ranking (the model checks'), else one is loaded here."""
    from ..similarity.benefits import same_need_by_meaning
    from ..similarity.classify import Relation
    from .merges import NOT_PROPOSED_NOTE, MergeKind, cluster_merge, rank_all

    steps.start("Finding clusters", step="finding clusters")
    clusters = index.clusters([Relation.DUPLICATE, Relation.OVERLAP])
    edges = cluster_edges(index, clusters)
    cap = len(clusters) if options.max_merges is None else min(len(clusters), options.max_merges)
    steps.start(f"Proposing merges (deterministic) for {cap} of {len(clusters)} clusters", total=cap)
    proposer = _unranked(config)
    # The model loads (mostly reading and converting weights) while the deterministic merges, pure
    # Python, are built: on 2 cores that hides most of the load.
    loading = None
    if resident is not None:
        from concurrent.futures import Future

        loading = Future()
        loading.set_result((resident, {"ranked_by": resident.status().model, "generated": options.generate}))
    elif options.model and cap:
        loading = _load_in_background(config, options, warn, notes, steps)
    found = []
    duplicates = same_need_by_meaning(index.embedder)  # a benefit is set aside only for one that says it
    for c, e in zip(clusters[:cap], edges):
        found.append(cluster_merge(proposer, list(c.stories), e, duplicates))
        steps.advance()
    proposable = [m for m in found if m.kind == MergeKind.DETERMINISTIC]
    engine, merges = None, None
    if loading is not None:
        steps.start("Loading the language model", step="loading model")
        engine, merges = loading.result()
        if not (proposable or options.generate):  # nothing to rank: as if it had not been asked for
            engine.unload()
            engine, merges = None, None
    merges = merges or {"ranked_by": None, "generated": False}
    if engine is not None and merges["ranked_by"] is not None:
        todo = len(proposable) if not options.generate else len(found)
        steps.start(f"Ranking merges with the model ({todo} clusters, {options.model_seconds:g} s budget)", total=todo)
        try:
            ranked = rank_all(engine, found, options.model_seconds, generate=options.generate, advance=steps.advance)
        finally:
            engine.unload()  # its memory is the page's now
        if ranked < len(proposable):
            notes.append(f"The model ranked the merges of {ranked} of {len(proposable)} clusters within its "
                         f"{options.model_seconds:g} s budget (--model-seconds); the other merges are the "
                         "deterministic grounded merge, not ranked, and say so.")
    else:
        why = "no model (--no-model)" if not options.model else "the model did not load"
        for m in proposable:
            m.note = f"deterministic: {why}"
        ranked = 0
    out = []
    for n, (c, e) in enumerate(zip(clusters, edges), 1):
        m = found[n - 1] if n <= cap else None
        out.append({"id": f"C{n}", "size": len(c), "cohesion": c.cohesion,
                    "representative": c.representative.id,
                    "stories": [{"story_id": s.id, "story_label": s.id if s.explicit_id else None,
                                 "file": display_path(s.file), "line": s.line + 1, "text": s.text}
                                for s in c.stories],
                    "edges": e, "merge": m.to_json() if m else None,
                    "merge_kind": m.kind if m else MergeKind.NOT_PROPOSED,
                    "merge_note": m.note if m else NOT_PROPOSED_NOTE.format(cap=cap)})
    kinds = Counter(c["merge_kind"] for c in out)
    summary = {"clusters": len(out), "with_merge": sum(1 for c in out if c["merge"]), "ranked_by_model": ranked,
               "duplicates_within": sum(1 for c in out if c["merge"] and c["merge"]["others"]),
               "wording_set_aside": sum(1 for c in out if c["merge"] and c["merge"]["said_by_other_source"]),
               "by_kind": {k: kinds.get(k, 0) for k in (MergeKind.MODEL, MergeKind.DETERMINISTIC, MergeKind.NONE,
                                                        MergeKind.NOT_PROPOSED)},
               "max_merges": options.max_merges, "model_seconds": options.model_seconds}
    return out, merges, summary


def cluster_edges(index, clusters) -> list[list[dict]]:
    """Each cluster's edges: members with the same text, and every related pair the index found
    (the same pairs and similarity figures as the findings; one pass over the index's pairs, not a
    search per member pair, which grew with the backlog squared)."""
    from ..formats.base import normalise
    from ..similarity.classify import Relation

    wanted = (Relation.DUPLICATE, Relation.OVERLAP)
    where: dict[tuple[str, str], int] = {}
    for n, c in enumerate(clusters):
        for s in c.stories:
            where.setdefault((s.file, s.id), n)
    related: dict[tuple, tuple[float, str]] = {}
    for a, b, p in index.related():
        ka, kb = (a.file, a.id), (b.file, b.id)
        if p.relation in wanted and ka in where and where[ka] == where.get(kb):
            related[(ka, kb)] = related[(kb, ka)] = (round(float(p.similarity), 4), p.relation.value)
    out = []
    for c in clusters:
        members = list(c.stories)
        edges = []
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                if normalise(a.text) == normalise(b.text):
                    edges.append({"a": a.id, "b": b.id, "similarity": 1.0, "relation": "same-text"})
                elif ((a.file, a.id), (b.file, b.id)) in related:
                    sim, rel = related[((a.file, a.id), (b.file, b.id))]
                    edges.append({"a": a.id, "b": b.id, "similarity": sim, "relation": rel})
        out.append(edges)
    return out


def _load_in_background(config, options: Options, warn, notes: list[str], steps: Steps):
    """A future of :func:`_proposer` running in a thread (the daemon loads models in a thread too);
    the load's own duration goes to ``steps.timings["model load (in parallel)"]``."""
    from concurrent.futures import ThreadPoolExecutor

    def load():
        started = time.perf_counter()
        try:
            return _proposer(config, options, warn, notes)
        finally:
            steps.timings["model load (in parallel)"] = round(time.perf_counter() - started, 3)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-model-load")
    future = pool.submit(load)
    pool.shutdown(wait=False)
    return future


def _proposer(config, options: Options, warn, notes: list[str]):
    """(engine, description): the engine that proposes merges, loaded once for the report."""
    from ..engine import EngineError
    from ..engine.proposer import GroundedEngine

    cfg = _ranking_config(config, options)
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


def _ranking_config(config, options: Options):
    """``config`` with the engine settings the merges' ranking uses (generation only with --generate)."""
    return replace(config, engine=replace(config.engine, generate=options.generate))


def _unranked(config):
    """The engine's proposer without a model: grounded candidates in the proposer's own order."""
    from ..engine.proposer import GroundedEngine

    return GroundedEngine(replace(config, engine=replace(config.engine, generate=False)))

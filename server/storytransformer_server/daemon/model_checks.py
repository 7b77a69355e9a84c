"""The model checks for the daemon's roots: run on request (``model/check``), kept with the stories' words.

A run asks the resident model the model rules' questions about a root (ST606 first: the embedding
index's near pairs, the one model check measured to help) within a budget of questions and seconds,
on the engine thread, so it queues with proposals and never loads a second model.

Its findings are kept per root with the words of every story they are about, not with the root's
generation: an edit elsewhere does not throw an hour of CPU answers away, and a finding whose story
or partner was reworded is left out until the next run. ``findings`` replies add the kept findings of
the file asked for and leave out the semantic duplicates (ST603) the model took back.

After a run, each edit's new near pairs are asked too (``engine.model_checks_on_edit``; by default only
where a question is cheap: a GPU or a remote engine), a few at a time on the engine thread, only while
the model is resident: an edit never loads a model, and what a run left unasked stays for the next run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

from storytransformer import model_checking
from storytransformer.findings import Finding, Related, shifted
from storytransformer.story import Story

from .protocol import INDEX_CHANGED, DaemonError
from .wire import finding_from_wire, finding_to_wire

log = logging.getLogger(__name__)

ANSWER_MARGIN_S = 3.0  # the questions stop this long before the request's deadline, so the answer gets out
EDIT_PAIRS = 8  # near pairs asked after one edit at most (a pasted block: the rest after the next edit or run)
EDIT_SECONDS = 30.0  # and the time they may take
Key = tuple[str, str]  # (file, the story's text): a story as long as its words stay the same


def key_of(s: Story) -> Key:
    return (s.file, s.text)


@dataclass
class Kept:
    """One root's latest run."""

    findings: list[tuple[Finding, Key, tuple[Key, ...]]] = field(default_factory=list)  # finding, its story, related
    dropped: set[frozenset] = field(default_factory=set)  # {key, key}: ST603 pairs the model took back
    summary: dict = field(default_factory=dict)
    asked: set[frozenset] = field(default_factory=set)  # {key, key}: near pairs the model answered (yes or no)
    seen: set[frozenset] = field(default_factory=set)  # {key, key}: the run's near pairs, answered or not
    stories: set = field(default_factory=set)  # the stories' keys the run and later rounds looked at
    thresholds: dict = field(default_factory=dict)  # the run's own, used again for the pairs edits make


def _placed(where: dict[Key, list[Story]], key: Key, line: int) -> Story | None:
    """The story with ``key``'s words nearest to ``line`` (its old place), if it is still there."""
    found = where.get(key)
    return min(found, key=lambda s: abs(s.range.start.line - line)) if found else None


class ModelChecks:
    def __init__(self, host, engine, similarity):
        self.host = host  # run_cpu(), notify_root()
        self.engine = engine
        self.similarity = similarity
        self.kept: dict[str, Kept] = {}  # root path -> its latest run
        self._following: dict[str, object] = {}  # root path -> the task asking about an edit's near pairs
        self._again: set[str] = set()  # roots edited again while their task ran

    def forget(self, root_path: str) -> None:
        self.kept.pop(root_path, None)
        self._again.discard(root_path)

    async def run(self, root, ctx, *, max_questions: int, seconds: float, thresholds: dict | None = None) -> dict:
        """Ask the model about ``root``; keep and return what it found (a summary, the notes and the findings'
        count per file). Clients showing the root's files are told to fetch their findings again.

        The questions stop at ``seconds`` or a few seconds before the request's own deadline (``seconds`` and
        some slack, or less when the client says so), whichever comes first: what was answered by then is kept
        and the summary says where it stopped."""
        started = time.monotonic()
        mod = self.engine.module()
        token = ctx.engine_token(mod)
        ctx.progress("Finding the near pairs", 0)
        try:
            stories, pairs = await self.similarity.duplicate_pairs(root)
        except DaemonError as e:
            log.info("model checks of %s without near pairs: %s", root.path, e.message)
            stories, pairs = await self.host.run_cpu(lambda: _snapshot(root)), []
        config = root.config
        if not self.engine.loaded:
            ctx.progress("Loading the language model", 5)
        ctx.progress(f"Asking the model ({len(pairs)} near pairs)", 10)
        deadline_at = getattr(ctx, "deadline_at", None)
        capped = []

        def ask(engine):
            budget = seconds  # counted from now: the model is loaded, and the request's deadline may be near
            if deadline_at is not None and deadline_at - time.monotonic() - ANSWER_MARGIN_S < budget:
                budget = max(0.001, deadline_at - time.monotonic() - ANSWER_MARGIN_S)
                capped.append(budget)
            return model_checking.run(config, stories, engine=engine, max_questions=max_questions, seconds=budget,
                                      thresholds=thresholds, token=token, root=root.path, pairs=pairs)

        outcome = await self.engine.call(ask, config=config, token=token)
        if capped:
            outcome.notes.append(("note", f"the questions had {capped[0]:.0f} s, the time left before the "
                                  "request's deadline"))
        kept = Kept(thresholds=dict(thresholds or {}))
        kept.findings = _keyed(outcome.findings, stories)
        kept.dropped = {frozenset((key_of(a), key_of(b))) for a, b, _ in outcome.dropped}
        kept.asked = _answered(pairs, outcome.result)
        kept.seen = {frozenset((key_of(a), key_of(b))) for a, b, _ in pairs}
        kept.stories = {key_of(s) for s in stories}
        result = outcome.result
        kept.summary = {"ran": outcome.ran, "notes": [{"level": lv, "message": m} for lv, m in outcome.notes],
                        "planned": result.planned if result else 0, "asked": result.asked if result else 0,
                        "asked_again": result.again if result else 0,
                        "stopped": (result.stopped or None) if result else None, "pairs": len(pairs),
                        "findings": len(outcome.findings), "taken_back": len(outcome.dropped),
                        "model": result.model if result else None, "seconds": round(time.monotonic() - started, 1),
                        "finished_at": time.time()}
        self.kept[root.path] = kept
        ctx.progress("Done", 100)
        log.info("model checks of %s: %s", root.path, kept.summary)
        self.host.notify_root(root, INDEX_CHANGED, {"root": root.path, "paths": [],
                                                    "reason": "model", "generation": root.generation})
        files: dict[str, int] = {}
        for f, *_ in kept.findings:
            files[f.file] = files.get(f.file, 0) + 1
        return {**kept.summary, "files": files}

    # -- keeping up with edits ----------------------------------------------------------------------------
    def edited(self, root) -> None:
        """``root``'s semantic findings are fresh after an edit: ask about its new near pairs, in the background,
        when a run of the model checks is kept for it, the model is resident and the setting allows it."""
        kept = self.kept.get(root.path)
        if kept is None or not kept.summary.get("ran") or not self.engine.loaded or not self._on_edit(root.config):
            return
        task = self._following.get(root.path)
        if task is not None and not task.done():
            self._again.add(root.path)  # the running round looks again when it ends
            return
        import asyncio

        self._following[root.path] = asyncio.get_running_loop().create_task(self._follow(root),
                                                                          name=f"model-checks:{root.path}")

    def _on_edit(self, config) -> bool:
        mode = config.engine.model_checks_on_edit
        if mode != "auto":
            return mode == "on"
        status = self.engine.status()
        return status.get("backend") == "remote" or not str(status.get("device", "cpu")).startswith("cpu")

    async def _follow(self, root) -> None:
        try:
            while True:
                self._again.discard(root.path)
                await self._ask_edited(root)
                if root.path not in self._again:
                    return
        except Exception:  # noqa: BLE001 - a failed round must not take the daemon down; the next edit tries again
            log.exception("model checks after an edit of %s failed", root.path)

    async def _ask_edited(self, root) -> None:
        """One round: the near pairs not yet answered (at most EDIT_PAIRS) asked and merged into the kept run."""
        import copy

        kept = self.kept.get(root.path)
        if kept is None or not self.engine.loaded:
            return
        looked = kept.stories  # stories typed or reworded since are the ones asked about
        stories, pairs = await self.similarity.duplicate_pairs(root, only=lambda s: key_of(s) not in looked)
        present = {key_of(s) for s in stories}
        # Answers are kept for words no longer present too: an undo brings them back without asking again.
        known = kept.asked | kept.seen  # what the run left unasked waits for the next run
        unknown = [p for p in pairs if frozenset((key_of(p[0]), key_of(p[1]))) not in known]
        new = unknown[:EDIT_PAIRS]

        def settle(answered: set) -> None:
            """The stories looked at from now on: all present, less those with a pair still to ask."""
            waiting = {k for a, b, _ in unknown for k in (key_of(a), key_of(b))
                       if frozenset((key_of(a), key_of(b))) not in answered}
            kept.stories = present - waiting
        if not new:
            settle(set())
            return
        config = copy.copy(root.config)
        config.select, config.extend_select = ["ST606"], []  # ignore and severity still apply
        if not (self.engine.loaded and self.engine.matches(config)):  # unloaded or replaced meanwhile: never load
            return
        token = self.engine.token()

        def ask(engine):
            return model_checking.run(config, stories, engine=engine, max_questions=2 * len(new),
                                      seconds=EDIT_SECONDS, thresholds=kept.thresholds or None, token=token,
                                      root=root.path, pairs=new)

        outcome = await self.engine.call(ask, config=config, token=token)
        if self.kept.get(root.path) is not kept or not outcome.ran:  # a new run replaced it meanwhile
            return
        have = {(f.code, subject, others) for f, subject, others in kept.findings}
        kept.findings += [k for k in _keyed(outcome.findings, stories) if (k[0].code, k[1], k[2]) not in have]
        kept.dropped |= {frozenset((key_of(a), key_of(b))) for a, b, _ in outcome.dropped}
        answered = _answered(new, outcome.result)
        kept.asked |= answered
        settle(answered)
        kept.summary["after_edits"] = {
            "asked": kept.summary.get("after_edits", {}).get("asked", 0) + len(answered),
            "findings": kept.summary.get("after_edits", {}).get("findings", 0) + len(outcome.findings),
            "taken_back": kept.summary.get("after_edits", {}).get("taken_back", 0) + len(outcome.dropped)}
        log.info("model checks of %s after an edit: %d near pairs asked, %d findings", root.path, len(answered),
                 len(outcome.findings))
        self.host.notify_root(root, INDEX_CHANGED, {"root": root.path, "paths": [], "reason": "model",
                                                    "generation": root.generation})

    def status(self, root_path: str) -> dict | None:
        kept = self.kept.get(root_path)
        return None if kept is None else dict(kept.summary)

    def findings_for(self, root, path: str) -> list[Finding]:
        """The kept model findings of ``path`` whose story and partners still have their words, where they
        are now (call with the root's lock held or from its CPU thread)."""
        kept = self.kept.get(root.path)
        mine = [k for k in kept.findings if k[0].file == path] if kept is not None else []
        if not mine:
            return []
        # Only the files these findings name are read (the asked file and its partners' files), not every
        # story of the root: this runs on each ``findings`` request, which edits make at typing speed.
        where: dict[Key, list[Story]] = {}
        for s in _stories_of(root, {path} | {key[0] for _, _, others in mine for key in others}):
            where.setdefault(key_of(s), []).append(s)
        out = []
        for f, subject, others in mine:
            here = _placed(where, subject, f.range.start.line)
            if here is None:
                continue
            related, lost = [], False
            for r, key in zip(f.related, others):
                there = _placed(where, key, r.range.start.line)
                if there is None:
                    lost = True
                    break
                related.append(Related(there.file, there.range, there.id, r.message))
            if lost:
                continue
            moved = shifted(f, here.range.start.line - f.range.start.line)
            out.append(replace(moved, story_id=here.id, related=tuple(related)))
        return out

    def without_taken_back(self, root, path: str, wire: list[dict]) -> list[dict]:
        """``wire`` (semantic findings of ``path``) less the ST603 pairs the model took back."""
        kept = self.kept.get(root.path)
        if kept is None or not kept.dropped or not any(d.get("code") == "ST603" for d in wire):
            return wire
        files = {path} | {r["file"] for d in wire if d.get("code") == "ST603" for r in d.get("related", ())}
        text_at: dict[tuple[str, int], str] = {(s.file, s.range.start.line): s.text for s in _stories_of(root, files)}
        out = []
        for d in wire:
            if d.get("code") == "ST603":
                mine = (path, text_at.get((path, d["range"]["start"]["line"]), ""))
                related = d.get("related", ())
                keep = [i for i, r in enumerate(related)
                        if frozenset((mine, (r["file"], text_at.get((r["file"], r["range"]["start"]["line"]), ""))))
                        not in kept.dropped]
                if not keep:
                    continue
                if len(keep) != len(related):
                    from storytransformer.similarity.workspace_findings import trimmed  # the similarity extra

                    d = finding_to_wire(trimmed(finding_from_wire(d), keep, root.path))
            out.append(d)
        return out


def _keyed(findings, stories) -> list[tuple[Finding, Key, tuple[Key, ...]]]:
    """Each finding with the words of its story and of the stories it names (those outside ``stories`` are
    left out: nothing to keep them by)."""
    by_place = {(s.file, s.range.start.line): s for s in stories}
    out = []
    for f in findings:
        subject = by_place.get((f.file, f.range.start.line))
        if subject is None:
            continue
        others = tuple(key_of(by_place[(r.file, r.range.start.line)]) for r in f.related
                       if (r.file, r.range.start.line) in by_place)
        if len(others) == len(f.related):
            out.append((f, key_of(subject), others))
    return out


def _answered(pairs, result) -> set[frozenset]:
    """The near pairs a judge run answered: the duplicate questions come first, in ``pairs`` order (suppressed
    pairs are never asked), so the first ``result.asked`` of them."""
    if result is None:
        return set()
    from storytransformer.engine.judge import plan_pairs

    asks = plan_pairs(pairs)[:result.asked]
    return {frozenset((key_of(a.others[0]), key_of(a.story))) for a in asks}


def _stories_of(root, paths) -> list[Story]:
    """The stories of the files ``paths`` of ``root`` (those it has)."""
    files = root.workspace.files
    return [s for p in paths if p in files for s in files[p].stories]


def _snapshot(root) -> list[Story]:
    with root.lock:
        return list(root.workspace.stories())

"""Every cluster's merge proposal: the deterministic grounded merge for all of them first, then
the language model ranks them while its time budget lasts.

Why two passes: the deterministic merge (:mod:`storytransformer.similarity.merge`, checked by the
engine's validator) costs milliseconds and needs no model, so every cluster gets one however slow
the model is; the model only reorders what already passed the validator (it never adds an
ungrounded word), so running out of model time costs the order, never a proposal. Each cluster
says which it got (:class:`MergeKind`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from ..story import Story

NO_PROPOSAL = "no grounded merge"


class MergeKind:
    """What a cluster's ``merge_kind`` says (and the start of its ``merge_note``)."""

    MODEL = "model"  # ranked by the model
    DETERMINISTIC = "deterministic"  # the grounded merge in the proposer's own order
    NONE = "none"  # no candidate passed the validator
    NOT_PROPOSED = "not proposed"  # beyond --max-merges


RANKED_NOTE = "ranked by the model"
NO_TIME_NOTE = "deterministic: no model time left"
NOT_PROPOSED_NOTE = "not proposed: --max-merges {cap} proposes a merge for the {cap} largest clusters only"


@dataclass
class ClusterMerge:
    """One cluster's proposals (accepted, best first) or why there is none."""

    stories: list[Story]
    same_need: bool
    accepted: list = None  # engine Proposals that passed the validator
    kind: str = MergeKind.NOT_PROPOSED
    note: str = ""

    def to_json(self) -> dict | None:
        if not self.accepted:
            return None
        p = self.accepted[0]
        return {"text": p.text, "origin": p.origin, "provenance": dict(p.provenance), "ranked": p.score is not None,
                "score": None if p.score is None else round(p.score, 4), "alternatives": len(self.accepted) - 1}


def grounded(proposer, stories: Sequence[Story], same_need: bool) -> ClusterMerge:
    """The deterministic proposals of one cluster (``proposer`` has no model), or why none passed."""
    from ..engine import EngineError
    from ..engine.proposer import Outcome

    out = ClusterMerge(list(stories), same_need)
    try:
        found = proposer.propose_merge(out.stories, include_rejected=True, same_need=same_need)
    except EngineError as e:
        out.accepted, out.kind, out.note = [], MergeKind.NONE, f"{NO_PROPOSAL}: {e}"
        return out
    outcome = Outcome.of("merge", found, len(out.stories))
    out.accepted = list(outcome.accepted)
    if out.accepted:
        out.kind, out.note = MergeKind.DETERMINISTIC, ""
    else:
        out.kind, out.note = MergeKind.NONE, f"{NO_PROPOSAL}: {outcome.reason}"
    return out


def rank(engine, merge: ClusterMerge, deadline) -> None:
    """Order ``merge``'s accepted proposals by the model's log-likelihood per token, as the
    engine's own proposer does (same prompt, same score), in one scoring call."""
    from ..engine import prompts
    from ..engine.proposer import source_text_with_markers

    context = engine.render(prompts.messages("merge", [source_text_with_markers(s) for s in merge.stories]))
    scores = engine.score([p.text for p in merge.accepted], context=context, deadline=deadline)
    ranked = [replace(p, score=s.per_token) for p, s in zip(merge.accepted, scores)]
    merge.accepted = sorted(ranked, key=lambda p: -p.score if p.score is not None else math.inf)
    merge.kind, merge.note = MergeKind.MODEL, RANKED_NOTE


def generated(engine, merge: ClusterMerge, deadline) -> None:
    """``--generate``: the model's own merge joins the candidates (validated like the others), then
    all are ranked: the engine's full merge request."""
    found = engine.propose_merge(merge.stories, deadline=deadline, same_need=merge.same_need)
    if found:
        merge.accepted = list(found)
    if merge.accepted and any(p.score is not None for p in merge.accepted):
        merge.kind, merge.note = MergeKind.MODEL, RANKED_NOTE


def rank_all(engine, merges: Sequence[ClusterMerge], seconds: float, *, generate: bool = False,
             advance: Callable[[int], None] = lambda n: None) -> int:
    """Let the model rank every cluster with a proposal until ``seconds`` run out; the rest keep
    their deterministic order and say so. Returns how many the model ranked.

    Clusters with several grounded proposals come first (largest first): there the model's order
    decides which merge is shown. A cluster with one proposal only gets its score after those."""
    from ..engine import Deadline, DeadlineExceeded, EngineError

    budget = Deadline.after(seconds)
    if generate:
        todo = [m for m in merges if m.kind in (MergeKind.DETERMINISTIC, MergeKind.NONE)]
    else:
        todo = [m for m in merges if m.kind == MergeKind.DETERMINISTIC]
        todo = [m for m in todo if len(m.accepted) > 1] + [m for m in todo if len(m.accepted) == 1]
    done = 0
    for m in todo:
        if budget.expired:
            if m.kind == MergeKind.DETERMINISTIC:
                m.note = NO_TIME_NOTE
            continue
        try:
            generated(engine, m, budget) if generate else rank(engine, m, budget)
        except DeadlineExceeded:
            if m.kind == MergeKind.DETERMINISTIC:
                m.note = NO_TIME_NOTE
            continue
        except EngineError as e:  # one cluster the model cannot score keeps its deterministic order
            if m.kind == MergeKind.DETERMINISTIC:
                m.note = f"deterministic: the model could not rank it ({e})"
            continue
        done += m.kind == MergeKind.MODEL
        advance(1)
    return done

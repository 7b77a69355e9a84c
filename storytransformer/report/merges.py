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

from ..similarity.needs import SameNeed
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
    same_need: bool | SameNeed
    accepted: list = None  # engine Proposals that passed the validator
    kind: str = MergeKind.NOT_PROPOSED
    note: str = ""
    # set when the merge covers only a group of duplicates of the cluster: why the whole cluster has none
    others: str = ""

    def set_aside(self) -> list[str]:
        """The wordings the first proposal leaves out because another source says the same (duplicates
        only), each naming its story and the one that says it ("a.txt:3's means 'see ...' (said by a.txt:9)")."""
        if not (self.same_need and self.accepted):
            return []
        from ..similarity.needs import keeps_every_need

        return [str(x) for x in keeps_every_need(self.accepted[0].text, self.stories, same_need=self.same_need).said]

    def kept_apart(self) -> list[str]:
        """Duplicates only: each two benefits the merge keeps both of because they state different goals
        ("a.txt:1's 'I do not pay a late fee' and a.txt:2's 'I can keep reading it longer'")."""
        if not (isinstance(self.same_need, SameNeed) and self.accepted):
            return []
        from ..similarity.benefits import benefits_kept_apart
        from ..similarity.needs import story_label

        return [f"{story_label(a)}'s {ea!r} and {story_label(b)}'s {eb!r}"
                for a, ea, b, eb in benefits_kept_apart(self.stories, self.same_need)]

    def to_json(self) -> dict | None:
        if not self.accepted:
            return None
        p = self.accepted[0]
        return {"text": p.text, "origin": p.origin, "provenance": dict(p.provenance), "ranked": p.score is not None,
                "score": None if p.score is None else round(p.score, 4), "alternatives": len(self.accepted) - 1,
                "said_by_other_source": self.set_aside(), "benefits_kept_apart": self.kept_apart(),
                "merged": [s.id for s in self.stories],
                "others": self.others}


DUPLICATE_RELATIONS = ("duplicate", "same-text")  # cluster edges whose two stories ask for the same thing


def only_duplicates(edges: Sequence[dict]) -> bool:
    """Every related pair of the cluster asks for the same thing (ST603 duplicates or the same text)."""
    return bool(edges) and all(e["relation"] in DUPLICATE_RELATIONS for e in edges)


def duplicate_groups(stories: Sequence[Story], edges: Sequence[dict]) -> list[list[Story]]:
    """The cluster's groups of two or more members joined by duplicate edges, largest first (none
    when two members share an id: the edges name stories by id)."""
    by_id = {s.id: s for s in stories}
    if len(by_id) != len(stories):
        return []
    parent = {i: i for i in by_id}

    def root(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for e in edges:
        if e["relation"] in DUPLICATE_RELATIONS and e["a"] in parent and e["b"] in parent:
            parent[root(e["a"])] = root(e["b"])
    groups: dict[str, list[Story]] = {}
    for s in stories:
        groups.setdefault(root(s.id), []).append(s)
    return sorted((g for g in groups.values() if len(g) > 1), key=len, reverse=True)


def cluster_merge(proposer, stories: Sequence[Story], edges: Sequence[dict] = (),
                  duplicates: SameNeed = SameNeed()) -> ClusterMerge:
    """The deterministic proposals of one cluster (``proposer`` has no model), or why none passed.

    First every need of every member in the merged story's own words. Where none passes:
    - members that are all duplicates (``edges``, as the report lists them) may have a wording set
      aside that another member says (:meth:`ClusterMerge.set_aside` names it, as ``suggest merge``
      does for duplicates);
    - otherwise the largest group of duplicates inside the cluster is merged alone, and the merge says
      that the other members stay (:attr:`ClusterMerge.others`): they ask for other things, and no one
      story keeps all of them and stays atomic.
    ``duplicates`` judges whether a benefit may be set aside (:mod:`..similarity.benefits`)."""
    out = grounded(proposer, stories, same_need=False)
    if out.kind != MergeKind.NONE:
        return out
    if only_duplicates(edges):
        retry = grounded(proposer, stories, same_need=duplicates)
        return retry if retry.kind != MergeKind.NONE else out
    for group in duplicate_groups(stories, edges):
        part = _as_duplicates(proposer, group, duplicates)
        if part is not None:
            part.others = out.note.removeprefix(f"{NO_PROPOSAL}: ")
            return part
    return out


def _as_duplicates(proposer, stories: Sequence[Story], duplicates: SameNeed) -> ClusterMerge | None:
    """The merge of stories joined by duplicate edges: every wording kept if one story can, else with
    a wording set aside that another of them says; None when neither passes."""
    for same_need in (False, duplicates):
        found = grounded(proposer, stories, same_need=same_need)
        if found.kind != MergeKind.NONE:
            return found
    return None


def grounded(proposer, stories: Sequence[Story], same_need: bool | SameNeed) -> ClusterMerge:
    """One pass of :func:`cluster_merge`: with ``same_need`` a wording may be set aside."""
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

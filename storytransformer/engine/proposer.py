"""The proposer: grounded merge, rewrite and split proposals over any backend.

It holds one :class:`~.backend.Backend` (transformers, fast path, remote, or none) and never asks
which: deterministic candidates come first (they work without a model); generation adds the
model's own answer; the validator discards anything ungrounded (logging why), and the model's
log-likelihood orders what is left. When nothing is left, :func:`why_none` says why in a sentence.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

from ..config import Config
from ..findings import Finding
from ..story import Story
from . import candidates as cands
from . import long_context as long_context
from . import prompts
from .backend import STOP_TEXT, Backend, NoModel
from .contract import (Cancelled, CancelToken, ConflictReport, Deadline, DeadlineExceeded, EngineError, EngineStatus,
                   Proposal, ProposalKind, Score, checkpoint)
from .conflict import heuristic
from .grounding import Validator, source_text

log = logging.getLogger("storytransformer.engine")

if TYPE_CHECKING:
    from ..similarity.needs import SameNeed


class Proposer:
    """The engine every caller uses: proposal logic composed with one backend."""

    def __init__(self, config: Config | None = None, backend: Backend | None = None):
        self.config = config or Config()
        self.backend: Backend = backend if backend is not None else NoModel()
        self.validator = Validator(self.config)

    # -- the backend ----------------------------------------------------------------
    def load(self, *, token: CancelToken | None = None, deadline: Deadline | None = None) -> EngineStatus:
        return self.backend.load(token=token, deadline=deadline)

    def unload(self) -> None:
        self.backend.unload()

    def status(self) -> EngineStatus:
        return self.backend.status()

    @property
    def loaded(self) -> bool:
        return self.backend.loaded

    def score(self, texts: Sequence[str], *, context: str = "", token: CancelToken | None = None,
              deadline: Deadline | None = None) -> list[Score]:
        return self.backend.score(texts, context=context, token=token, deadline=deadline)

    def generate(self, messages: list[dict], *, max_new_tokens: int | None = None, allowed_text: str = "",
                 token: CancelToken | None = None, deadline: Deadline | None = None,
                 stop: Sequence[str] = STOP_TEXT) -> str:
        """The backend's answer, at most ``max_new_tokens`` (this proposer's ``engine.max_new_tokens``) long."""
        return self.backend.generate(messages, max_new_tokens=max_new_tokens or self.config.engine.max_new_tokens,
                                     allowed_text=allowed_text, token=token, deadline=deadline, stop=stop)

    def render(self, messages: list[dict]) -> str:
        """The prompt text that precedes the answer (for conditional scoring)."""
        return self.backend.render(messages)

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    def context_window(self) -> int:
        return self.backend.context_window()

    # -- long context -------------------------------------------------------------------
    def backlog_context(self, kind: str, sources: Sequence[Story], backlog: Sequence[Story] | None,
                        token: CancelToken | None = None,
                        deadline: Deadline | None = None) -> long_context.PackedContext | None:
        """Related stories of ``backlog`` packed into what the prompt for ``kind`` leaves of the
        budget (``engine.context_tokens``, or the window minus the answer). None without a backlog."""
        if not backlog:
            return None
        checkpoint(token, deadline)
        total = self.config.engine.context_tokens or (self.context_window() - self.config.engine.max_new_tokens)
        bare = self.count_tokens(self.render(prompts.messages(kind, list(sources), context="\n")))
        packed = long_context.pack(backlog, self.count_tokens, total - bare, query=list(sources),
                                   similarity_config=self.config.similarity)
        log.info("%s: %d related stories in the prompt (%d tokens of %d, %s; %d left out)", kind,
                 len(packed.stories), packed.tokens, packed.budget, packed.retrieval, packed.omitted)
        return packed

    # -- proposals ------------------------------------------------------------------
    def propose_merge(self, stories: Sequence[Story], *, token: CancelToken | None = None,
                      deadline: Deadline | None = None, include_rejected: bool = False,
                      backlog: Sequence[Story] | None = None, same_need: bool | SameNeed = False) -> list[Proposal]:
        """Merged stories. With ``backlog``, its stories most related to these go into the prompt
        as context (the validator still draws the allowed words from ``stories`` only). With
        ``same_need`` (duplicates) a part may be left out when the merge keeps another source's
        part of that kind (see :mod:`storytransformer.similarity.needs`)."""
        stories = list(stories)
        if len(stories) < 2:
            raise EngineError("a merge needs at least two stories")
        packed = self.backlog_context("merge", stories, backlog, token, deadline)
        return self._propose("merge", stories, cands.merge_candidates(stories, same_need=same_need), (), 1, token,
                             deadline, include_rejected, context=packed.text if packed else "", same_need=same_need)

    def propose_split(self, story: Story, findings: Sequence[Finding] = (), *, token: CancelToken | None = None,
                      deadline: Deadline | None = None, include_rejected: bool = False) -> list[Proposal]:
        if not findings:
            findings = self.story_findings(story)
        found = cands.split_candidates(story, findings)
        targeted = tuple(f.code for f in findings if f.code.startswith("ST2"))
        return self._propose("split", [story], found, targeted, 2, token, deadline, include_rejected)

    def propose_rewrite(self, story: Story, findings: Sequence[Finding] = (), *, token: CancelToken | None = None,
                        deadline: Deadline | None = None, include_rejected: bool = False) -> list[Proposal]:
        findings = list(findings) or self.story_findings(story)
        targeted = tuple(f.code for f in findings if f.story_id == story.id)
        found = cands.rewrite_candidates(story, findings)
        detail = [story.ends.text[s:e] for s, e in cands.detail_spans(story.ends, findings, story.id)] if story.ends else []
        return self._propose("rewrite", [story], found, targeted, 1, token, deadline, include_rejected, detail=detail,
                             fixed=cands.fixed_words(story, findings))

    def propose(self, kind: ProposalKind, stories: Sequence[Story], findings: Sequence[Finding] = (), *,
                token: CancelToken | None = None, deadline: Deadline | None = None) -> "Outcome":
        """``propose_<kind>`` with the rejected proposals kept, as an :class:`Outcome` that says why
        when none passed (what the daemon answers an editor with)."""
        stories = list(stories)
        if kind == "merge":
            found = self.propose_merge(stories, token=token, deadline=deadline, include_rejected=True)
        elif kind == "rewrite":
            found = self.propose_rewrite(stories[0], findings, token=token, deadline=deadline, include_rejected=True)
        elif kind == "split":
            found = self.propose_split(stories[0], findings, token=token, deadline=deadline, include_rejected=True)
        else:
            raise EngineError(f"unknown proposal kind {kind!r} (merge, rewrite or split)")
        outcome = Outcome.of(kind, found, len(stories))
        for line in outcome.details():
            log.info("%s: %s", kind, line)
        return outcome

    def story_findings(self, story: Story) -> list[Finding]:
        """The core's findings for ``story`` on its own (ids rewritten to the story's)."""

        _, found = self.validator.findings_of([story.text.replace("\n", " ")])
        return [replace(f, story_id=story.id) for f in found]

    def _split_merges(self, rejected: list[Proposal], sources: list[Story], source_codes: set[str], same_need: bool | SameNeed,
                      token, deadline) -> list[Proposal]:
        """Every merge was refused and some for joining several actions that every source joins too:
        those merges split into one story per action, checked like any merge. Only where the sources
        share one role or one means: a line per action must not give one role an action only another
        role asked for ("As a user or admin, I want to log out" where only the admin asked)."""
        if not _bundle_shared(sources, self.validator):
            return []
        bundled = []
        for p in rejected:
            if len(p.stories) == 1 and any(code.startswith("ST2") for code in p.grounding.findings):
                read, findings = self.validator.findings_of(p.stories)
                if len(read) == 1:
                    bundled.append((cands.Candidate(p.stories, dict(p.provenance), p.origin), read[0], findings))
        out: list[Proposal] = []
        for c in cands.split_merges(bundled):
            checkpoint(token, deadline)
            g = self.validator.check(c.stories, sources, source_codes=source_codes, keep_needs=True,
                                     same_need=same_need)
            out.append(Proposal("merge", c.stories, tuple(s.id for s in sources), g, c.provenance, c.origin))
        return out

    def _propose(self, kind: str, sources: list[Story], found: list[cands.Candidate], targeted: tuple[str, ...],
                 min_lines: int, token, deadline, include_rejected: bool, context: str = "",
                 same_need: bool | SameNeed = False, detail: Sequence[str] = (),
                 fixed: Sequence[tuple[str, str]] = ()) -> list[Proposal]:
        checkpoint(token, deadline)
        msgs = prompts.messages(kind, [source_text_with_markers(s) for s in sources], context=context)
        if self.config.engine.generate:
            try:
                allowed = " ".join(source_text(s) for s in sources)
                answer = self.generate(msgs, allowed_text=allowed, token=token, deadline=deadline)
                lines = prompts.parse_stories(answer)
                lines = lines[: max(min_lines, len(lines))] if kind == "split" else lines[:1]
                if len(lines) >= min_lines:
                    found = found + [cands.Candidate(tuple(lines), {"*": "+".join(s.id for s in sources)}, "generated")]
                else:
                    log.info("%s: the model's answer has no usable story: %r", kind, answer[:200])
            except (Cancelled, DeadlineExceeded):
                raise
            except EngineError as e:
                log.info("%s: generation skipped: %s", kind, e)
        source_codes = self.validator.source_codes(sources)
        proposals: list[Proposal] = []
        origins: dict[tuple[str, ...], str] = {}
        for c in found:  # the same text from two origins is one candidate ("template+generated")
            key = tuple(x.lower() for x in c.stories)
            origins[key] = f"{origins[key]}+{c.origin}" if key in origins and c.origin not in origins[key] else c.origin
        seen = set()
        for c in found:
            checkpoint(token, deadline)
            key = tuple(x.lower() for x in c.stories)
            if key in seen:
                continue
            seen.add(key)
            c = replace(c, origin=origins[key])
            g = self.validator.check(c.stories, sources, targeted=targeted, source_codes=source_codes,
                                     keep_needs=kind == "merge", same_need=same_need,
                                     keep_benefit=kind in ("rewrite", "split"), detail=detail, fixed=fixed)
            if not g.accepted:
                log.info("%s proposal rejected (%s): %s", kind, c.origin, "; ".join(g.reasons))
            proposals.append(Proposal(kind, c.stories, tuple(s.id for s in sources), g, c.provenance, c.origin))
        if kind == "merge" and proposals and not any(p.accepted for p in proposals):
            proposals += self._split_merges(proposals, sources, source_codes, same_need, token, deadline)
        accepted = [p for p in proposals if p.accepted]
        accepted = self._rank(accepted, self.render(msgs), token, deadline)
        rejected = [p for p in proposals if not p.accepted]
        return accepted + (rejected if include_rejected else [])

    def _rank(self, proposals: list[Proposal], context: str, token, deadline) -> list[Proposal]:
        if len(proposals) < 1:
            return proposals

        try:
            scores = self.score([p.text for p in proposals], context=context, token=token, deadline=deadline)
        except (Cancelled, DeadlineExceeded):
            raise
        except EngineError as e:
            log.info("ranking by the model skipped: %s", e)
            return proposals
        ranked = [replace(p, score=s.per_token) for p, s in zip(proposals, scores)]
        return sorted(ranked, key=lambda p: -p.score if p.score is not None else math.inf)

    # -- conflicts ----------------------------------------------------------------------
    def check_conflict(self, a: Story, b: Story, *, token: CancelToken | None = None,
                       deadline: Deadline | None = None, backlog: Sequence[Story] | None = None) -> ConflictReport:
        """The heuristic verdict and the model's probability of "yes". With ``backlog``, its
        stories most related to ``a`` and ``b`` go into the model's prompt as context."""
        checkpoint(token, deadline)
        h = heuristic(a, b)
        model_yes = None
        try:
            packed = self.backlog_context("conflict", [a, b], backlog, token, deadline)
            context = self.render(prompts.messages("conflict", [a, b], context=packed.text if packed else ""))
            yes, no = self.score(["yes", "no"], context=context, token=token, deadline=deadline)
            model_yes = 1.0 / (1.0 + math.exp(no.logprob - yes.logprob))
        except (Cancelled, DeadlineExceeded):
            raise
        except EngineError as e:
            log.info("conflict scoring by the model skipped: %s", e)
        return ConflictReport(h.conflict, h.kind, h.reason, h.conflict, model_yes, (a.id, b.id))


def source_text_with_markers(story: Story) -> str:
    """What the model sees of a source story: the story sentence itself, not notes after it."""
    if story.trailing is not None and story.parts():
        end = story.trailing.range.start.character - story.range.start.character
        if 0 < end <= len(story.text) and "\n" not in story.text:
            return story.text[:end].strip()
    return story.text if story.parts() else source_text(story)


GroundedEngine = Proposer  # the name report/collect.py and older callers use for a proposer without a model


@dataclass(frozen=True)
class Outcome:
    """A proposal request's answer: what passed validation (ranked), what did not, and, when
    nothing passed, one sentence saying why (:func:`why_none`)."""

    kind: ProposalKind
    accepted: tuple[Proposal, ...]
    rejected: tuple[Proposal, ...]
    reason: str = ""

    @classmethod
    def of(cls, kind: ProposalKind, proposals: Sequence[Proposal], sources: int) -> "Outcome":
        accepted = tuple(p for p in proposals if p.accepted)
        rejected = tuple(p for p in proposals if not p.accepted)
        return cls(kind, accepted, rejected, "" if accepted else why_none(kind, sources, rejected))

    def details(self) -> list[str]:
        """One line per rejected proposal: its text and every reason (for a log, not a notification)."""
        return [f"{p.origin} proposal {p.text!r} rejected: {'; '.join(p.reasons)}" for p in self.rejected]


# (marker in a validator reason, what it means for a whole request); the first that most rejected
# proposals share names the failure
WHY = (
    ("drops what a source story asked for", "no proposal kept every part of {sources}"),
    ("drops the benefit", "no proposal kept the benefit ('so that ...') of {sources}"),
    ("still has the finding", "no proposal removed the finding it should fix"),
    ("invents content", "every proposal used words that are not in {sources}"),
    ("introduces finding", "every proposal brought in findings {sources} do not have"),
    ("not a well-formed story", "no proposal read as a well-formed story"),
    ("reads as", "no proposal read as the expected number of stories"),
    ("ST", "every proposal still breaks a story rule"),
)
NO_CANDIDATE = {
    "merge": "no proposal could be built: fewer than two of the stories have an 'I want ...' part",
    "rewrite": "no proposal could be built: the story has no fix and no 'I want ...' part to rebuild it from",
    "split": ("no proposal could be built: the story's 'I want ...' part has no pieces joined by 'and' or 'or' "
              "that each read as an action; split it by hand"),
}


def why_none(kind: str, sources: int, rejected: Sequence[Proposal]) -> str:
    """Why a request has no proposal, in one sentence a user can act on: the failure most
    rejected proposals share, with the first such proposal's own reason."""
    if not rejected:
        return NO_CANDIDATE.get(kind, "no proposal could be built")
    named = "the story" if sources == 1 else "both stories" if sources == 2 else f"all {sources} stories"
    counts: Counter = Counter()
    first: dict[str, str] = {}
    for p in rejected:
        for i, (marker, _) in enumerate(WHY):
            hit = next((r for r in p.reasons if marker in r), None)
            if hit is not None:
                counts[i] += 1
                first.setdefault(str(i), hit)
                break
    if not counts:
        reason = next((r for p in rejected for r in p.reasons), "")
        return f"no proposal passed validation{': ' + reason if reason else ''}"
    best = min(counts, key=lambda i: (-counts[i], i))
    headline = WHY[best][1].format(sources=named)
    return f"{headline} ({first[str(best)]})"


def _bundle_shared(sources: Sequence[Story], validator) -> bool:
    """Whether every source joins several actions itself and the sources share their role or their means."""
    if len(sources) < 2 or any(s.means is None for s in sources):
        return False

    def norm(text: str) -> str:
        return " ".join(text.lower().split()).strip(" ,.;")

    if len({norm(s.role.text) if s.role else "" for s in sources}) > 1 and len({norm(s.means.text) for s in sources}) > 1:
        return False
    for s in sources:
        _, findings = validator.findings_of([" ".join(s.text.split())])
        if not any(f.code.startswith("ST2") for f in findings):
            return False
    return True

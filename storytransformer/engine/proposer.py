"""What local and remote engines share: building, validating and ranking proposals.

A subclass supplies :meth:`score`, :meth:`generate` and :meth:`render`; this class turns them
into grounded proposals. Deterministic candidates come first (they work without a model);
generation adds the model's own answer; the validator discards anything ungrounded (logging
why), and the model's log-likelihood orders what is left.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Sequence

from ..config import Config
from ..findings import Finding
from ..story import Story
from . import candidates as cands
from . import context as long_context
from . import prompts
from .base import (Cancelled, CancelToken, ConflictReport, Deadline, DeadlineExceeded, EngineError, Proposal,
                   Score, Unsupported, checkpoint)
from .conflict import heuristic
from .grounding import Validator, source_text

log = logging.getLogger("storytransformer.engine")


class GroundedEngine:
    """Proposal logic over an abstract model (``score``, ``generate``, ``render``)."""

    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        self.validator = Validator(self.config)

    # -- what a backend supplies ------------------------------------------------
    def score(self, texts: Sequence[str], *, context: str = "", token: CancelToken | None = None,
              deadline: Deadline | None = None) -> list[Score]:
        raise Unsupported("this engine cannot score texts")

    def generate(self, messages: list[dict], *, max_new_tokens: int | None = None, allowed_text: str = "",
                 token: CancelToken | None = None, deadline: Deadline | None = None) -> str:
        raise Unsupported("this engine cannot generate text")

    def render(self, messages: list[dict]) -> str:
        """The prompt text that precedes the answer (for conditional scoring)."""
        return prompts.plain(messages)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model. Without a tokenizer: about four characters a token."""
        return max(1, (len(text) + 3) // 4) if text else 0

    def context_window(self) -> int:
        """The model's context length in tokens (unknown for a remote server: a common 4096)."""
        return 4096

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
                      backlog: Sequence[Story] | None = None) -> list[Proposal]:
        """Merged stories. With ``backlog``, its stories most related to these go into the prompt
        as context (the validator still draws the allowed words from ``stories`` only)."""
        stories = list(stories)
        if len(stories) < 2:
            raise EngineError("a merge needs at least two stories")
        packed = self.backlog_context("merge", stories, backlog, token, deadline)
        return self._propose("merge", stories, cands.merge_candidates(stories), (), 1, token, deadline, include_rejected,
                             context=packed.text if packed else "")

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
        return self._propose("rewrite", [story], found, targeted, 1, token, deadline, include_rejected)

    def story_findings(self, story: Story) -> list[Finding]:
        """The core's findings for ``story`` on its own (ids rewritten to the story's)."""

        _, found = self.validator.findings_of([story.text.replace("\n", " ")])
        return [replace(f, story_id=story.id) for f in found]

    def _propose(self, kind: str, sources: list[Story], found: list[cands.Candidate], targeted: tuple[str, ...],
                 min_lines: int, token, deadline, include_rejected: bool, context: str = "") -> list[Proposal]:
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
                                     keep_needs=kind == "merge")
            if not g.accepted:
                log.info("%s proposal rejected (%s): %s", kind, c.origin, "; ".join(g.reasons))
            proposals.append(Proposal(kind, c.stories, tuple(s.id for s in sources), g, c.provenance, c.origin))
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

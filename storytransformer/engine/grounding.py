"""The validator: the last word on whether a proposal may be shown.

A proposal is accepted only if

(a) every line of it reads as a story with the core reader and the core rules find nothing
    ill-formed or non-atomic in it, nothing non-minimal that its sources do not already have (an
    aside a source wrote, "such as ...", may stay: dropping it would drop what the story asked
    for, and the proposal is no worse than its source), no targeted finding, and no finding the
    sources did not already have, and
(b) every content word of it (compared by Snowball stem) occurs in the role, means or ends of
    a source story. Template and function words are allowed, and so are the configured
    ``engine.allowed_words``. Text after a source story (``trailing``: notes, extra sentences,
    or an injected instruction) does not count as a source of requirements.

(c) it carries no markup (``<tag>``, ``</story>``, chat tokens such as ``<|im_start|>``) and
    nothing that reads as an instruction to a model ("ignore previous instructions",
    "New instruction:", "SYSTEM:", "assistant:", "you are now ..."), even when the source
    story holds it: grounded is not the same as clean (:func:`injection_reasons`).

(d) for a merge (``keep_needs``): it keeps every source's means and every distinct ends, and
    its role covers every source's role (:func:`storytransformer.similarity.needs.keeps_every_need`);
    a merge that would drop what a story asked for is refused, naming the need. For duplicates
    (``same_need``) a part may be left out when the merge keeps another source's part of that kind.

(e) for a rewrite or a split (``keep_benefit``): it keeps the source's benefit, every need word of
    its ends ("so that so they can be considered for a class" may become "so that they can be
    considered for a class", never nothing): a story cleaned up by losing why it was asked for
    has lost a need, whatever finding that removes. Only the ``detail`` a finding says to move out
    of the story (an aside after "such as", a bracket) may leave the ends.

(f) for a rewrite (``fixed``): it no longer has the words a finding's quick fix takes out of the
    source ("I'd like to" where ST501 asks for the backlog's "I want"): rules that compare a story
    with its backlog cannot see their finding in one proposal, so (a) alone would let it stay.

Whatever the model was told or tricked into saying, content it invented cannot pass (b), and
an instruction smuggled into a source story cannot be copied into a proposal past (c).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Iterable, Sequence

from ..config import Config
from ..injection import INSTRUCTION, MARKUP, SHOUTED_ROLE, injection_reasons  # noqa: F401 (re-exported)
from ..story import Story
from ..words import FUNCTION_WORDS, WORD, content_words, source_text, stem  # noqa: F401 (re-exported)
from .contract import Grounding

REFUSED_CRITERIA = frozenset({"well-formed", "atomic"})  # never in a proposal, even when a source has it

if TYPE_CHECKING:
    from ..similarity.needs import SameNeed


def source_vocabulary(sources: Iterable[Story]) -> set[str]:
    vocab: set[str] = set()
    for s in sources:
        vocab.update(content_words(source_text(s)))
    return vocab


class Validator:
    """Checks proposals against their sources with the core reader and rules."""

    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        self.allowed = frozenset(w.lower() for w in self.config.engine.allowed_words)
        self.allowed_stems = frozenset(stem(w) for w in self.allowed)

    def invented_words(self, lines: Sequence[str], sources: Sequence[Story]) -> list[str]:
        vocab = source_vocabulary(sources) | self.allowed_stems
        out: list[str] = []
        for line in lines:
            for st, surface in content_words(line, self.allowed).items():
                if st not in vocab and surface not in out:
                    out.append(surface)
        return out

    def findings_of(self, lines: Sequence[str]):
        """(stories read, findings) for ``lines`` as a tiny backlog of their own."""
        from ..lint import Linter
        from ..workspace import Workspace

        ws = Workspace(self.config)
        source = ws.set_text("proposal.txt", "\n".join(lines))
        return source.stories, Linter(ws).check_file("proposal.txt")

    def source_codes(self, sources: Sequence[Story]) -> set[str]:
        lines = [re.sub(r"\s+", " ", s.text).strip() for s in sources]
        _, findings = self.findings_of(lines)
        return {f.code for f in findings}

    def check(self, lines: Sequence[str], sources: Sequence[Story], *, targeted: Iterable[str] = (),
              source_codes: set[str] | None = None, keep_needs: bool = False, same_need: bool | SameNeed = False,
              keep_benefit: bool = False, detail: Iterable[str] = (),
              fixed: Iterable[tuple[str, str]] = ()) -> Grounding:
        reasons: list[str] = []
        lines = [line.strip() for line in lines]
        if not lines or any(not line for line in lines):
            return Grounding(False, ("empty proposal",))
        if any("\n" in line or "\r" in line for line in lines):
            return Grounding(False, ("a story spans several lines",))
        for line in lines:  # first: a proposal that smuggles an instruction is refused whatever else holds
            reasons.extend(injection_reasons(line))
        stories, findings = self.findings_of(lines)
        if len(stories) != len(lines):
            reasons.append(f"reads as {len(stories)} stories, expected {len(lines)}")
        for s in stories:
            if s.role is None or s.means is None:
                reasons.append(f"not a well-formed story (no {'role' if s.role is None else 'means'}): {s.text!r}")
        codes = sorted({f.code for f in findings})
        if source_codes is None:
            source_codes = self.source_codes(sources)
        for f in findings:  # ill-formed or non-atomic always; non-minimal unless a source is so already
            if f.criterion in REFUSED_CRITERIA or (f.criterion == "minimal" and f.code not in source_codes):
                reasons.append(f"{f.code} ({f.criterion}): {f.message}")
        refused = {f.code for f in findings if f.criterion in REFUSED_CRITERIA or f.criterion == "minimal"}
        still = sorted(set(targeted) & set(codes))
        if still:
            reasons.append(f"still has the finding(s) it should remove: {', '.join(still)}")
        joined = " ".join(lines)
        reasons.extend(f"{code}: still has '{words}', which its fix changes" for code, words in fixed if words in joined)
        new = sorted(set(codes) - source_codes - set(still) - refused)
        if new:
            reasons.append(f"introduces finding(s) the sources do not have: {', '.join(new)}")
        invented = self.invented_words(lines, sources)
        if invented:
            reasons.append(f"invents content not in the source stories: {', '.join(repr(w) for w in invented)}")
        if keep_needs:
            from ..similarity.needs import keeps_every_need

            needs = keeps_every_need(" ".join(lines), sources, same_need=same_need)
            if not needs.kept:
                reasons.append(f"drops what a source story asked for: {needs.reason}")
        if keep_benefit:
            reasons.extend(dropped_benefits(lines, sources, detail))
        return Grounding(not reasons, tuple(dict.fromkeys(reasons)), tuple(invented), tuple(codes))


def dropped_benefits(lines: Sequence[str], sources: Sequence[Story], detail: Iterable[str] = ()) -> list[str]:
    """A reason for each source whose ends has need words that ``lines`` lack (rule (e)); words of the
    ``detail`` texts (an aside or bracket a finding says to move out of the story) may go."""
    from ..similarity.needs import need_words, story_label

    have: set[str] = set()
    for text in detail:
        have.update(need_words(text))
    for line in lines:
        have.update(need_words(line))
    out = []
    for s in sources:
        if s.ends is None:
            continue
        missing = [w for st, w in need_words(s.ends.text).items() if st not in have]
        if missing:
            out.append(f"drops the benefit of {story_label(s)} ({', '.join(repr(w) for w in missing)} of "
                       f"{s.ends.text.strip(' ,.;')!r})")
    return out


def with_grounding(proposal, grounding: Grounding):
    return replace(proposal, grounding=grounding)

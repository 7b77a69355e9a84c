"""Do two benefits state the same goal? The judge a duplicate merge asks before it sets one aside.

Two stories can ask for the same thing for different reasons ("renew a book online, so that I do not
pay a late fee" and "... so that I can keep reading it for longer"). A merge of duplicates keeps one
wording of each part; for the benefit that is only right when the benefits are one goal in other
words. Shared words cannot tell (paraphrases share few), so the judge compares the benefits'
sentence embeddings, the same model and cache as the similarity index, and refuses a benefit that
says all the kept one says and more (:func:`.needs.adds_a_goal`). Two stories whose means are nearly
one sentence (their cosine at least CLOSE_MEANS_COSINE) are restatements of one story, and then a lower
cut applies to their benefits (:func:`cut_for`). The cuts were chosen on the tune part of
benchmarks/labels/benefits/ (`python benchmarks/benefit_quality.py`).
"""

from __future__ import annotations

import logging

import numpy as np

from .needs import SameNeed, adds_a_goal, shared_words_alike

log = logging.getLogger("storytransformer.similarity")

# Cosine of the two benefits' embeddings (all-MiniLM-L6-v2) at and above which they are one goal.
ALIKE_COSINE = 0.65
# The stories' means at least this close (cosine)...
CLOSE_MEANS_COSINE = 0.80
# ...and their benefits at least this close are one goal.
CLOSE_MEANS_ALIKE_COSINE = 0.55


def cut_for(means_cosine: float | None, cut: float = ALIKE_COSINE, close_cut: float = CLOSE_MEANS_ALIKE_COSINE,
            close_means: float = CLOSE_MEANS_COSINE) -> float:
    """The benefits' cut for two stories whose means have ``means_cosine`` (None: not known)."""
    return min(cut, close_cut) if means_cosine is not None and means_cosine >= close_means else cut


def alike_at(aside: str, kept: str, cosine: float, cut: float = ALIKE_COSINE) -> bool:
    """The rule, once the two benefits' cosine is known: close enough in meaning, and ``aside`` adds no goal."""
    return cosine >= cut and not adds_a_goal(aside, kept)


class EmbeddedBenefits:
    """Benefits compared by meaning with ``embedder`` (a :class:`.embedder.Embedder`; texts it has
    seen come from its cache)."""

    def __init__(self, embedder, cut: float = ALIKE_COSINE, close_cut: float = CLOSE_MEANS_ALIKE_COSINE,
                 close_means: float = CLOSE_MEANS_COSINE):
        self.embedder = embedder
        self.cut, self.close_cut, self.close_means = cut, close_cut, close_means

    def cosine(self, a: str, b: str) -> float:
        v = np.asarray(self.embedder.encode([a, b]), np.float32)
        norms = np.linalg.norm(v, axis=1)
        return float(v[0] @ v[1] / (norms[0] * norms[1])) if norms.all() else 0.0

    def __call__(self, aside: str, kept: str, aside_means: str | None = None, kept_means: str | None = None) -> bool:
        cosine = self.cosine(aside, kept)
        # the means matter only between the two cuts: elsewhere they are not embedded at all
        near = aside_means and kept_means and min(self.cut, self.close_cut) <= cosine < self.cut
        means = self.cosine(aside_means, kept_means) if near else None
        return alike_at(aside, kept, cosine, cut_for(means, self.cut, self.close_cut, self.close_means))


def same_need_by_meaning(embedder=None, config=None) -> SameNeed:
    """The duplicates' judge with benefits compared by meaning: with ``embedder``, or the shared one of
    the similarity settings ``config`` (the packaged model by default). Where no model can be loaded
    (similarity off, the model missing), the judge by shared words, which keeps more benefits."""
    if embedder is None:
        if config is not None and not getattr(config, "enabled", True):
            return SameNeed(shared_words_alike)
        try:
            from .embedder import shared_embedder

            embedder = shared_embedder(getattr(config, "model", ""), getattr(config, "device", "cpu"),
                                       getattr(config, "cache", True), getattr(config, "batch_size", 64),
                                       getattr(config, "quantize", "none"))
        except Exception as e:  # noqa: BLE001 - any load failure leaves the judge with no model
            log.info("benefits compared by shared words: the embedding model is not available (%s)", e)
            return SameNeed(shared_words_alike)
    return SameNeed(EmbeddedBenefits(embedder))


def same_need_by_cosine(cosine: float | None, means_cosine: float | None = None) -> SameNeed:
    """The duplicates' judge for one pair of stories whose benefits' cosine (and means' cosine) is
    already known (the daemon's duplicate finding carries them, for an editor that holds no model);
    with no benefits' cosine known, the judge by shared words."""
    if cosine is None:
        return SameNeed(shared_words_alike)
    cut = cut_for(means_cosine)
    return SameNeed(lambda aside, kept, *_means: alike_at(aside, kept, cosine, cut))


def benefits_kept_apart(sources, same_need: SameNeed) -> list[tuple]:
    """Each two sources' benefits that ``same_need``'s judge finds to state different goals (neither
    says the other in its words): every merge of these duplicates keeps both, and says why.
    (story, its benefit, other story, its benefit) in source order."""
    from .needs import covers, means_text

    judge = same_need.benefits_alike
    with_ends = [(s, s.ends.text.strip(" ,.;")) for s in sources if s.ends is not None and s.ends.text.strip(" ,.;")]
    out = []
    for i, (a, ea) in enumerate(with_ends):
        for b, eb in with_ends[i + 1:]:
            ma, mb = means_text(a), means_text(b)
            if not (covers(ea, eb) or covers(eb, ea) or judge(ea, eb, ma, mb) or judge(eb, ea, mb, ma)):
                out.append((a, ea, b, eb))
    return out

"""A merge of duplicates sets a benefit aside only for one that states the same goal.

Two stories may ask for the same thing for different reasons (the late-fee pair): the merge keeps both
benefits. Two wordings of one goal may be written once. The judge compares meanings with the real
packaged model; with no model, shared words decide (fewer benefits set aside).
"""

from __future__ import annotations

import pytest

from storytransformer.config import Config
from storytransformer.engine.grounding import Validator
from storytransformer.formats.text import read_text
from storytransformer.similarity.benefits import EmbeddedBenefits, same_need_by_cosine, same_need_by_meaning
from storytransformer.similarity.merge import merge_proposals
from storytransformer.similarity.needs import SameNeed, adds_a_goal, keeps_every_need, shared_words_alike

LATE_FEE = ("US-1: As a member, I want to renew a borrowed book online, so that I do not pay a late fee.",
            "US-10: As a library member, I want to extend a borrowed book online, so that I can keep reading it for longer.")
SAME_GOAL = ("US-1: As a member, I want to renew a borrowed book online, so that I can keep reading it for longer.",
             "US-2: As a library member, I want to extend a borrowed book online, so that I have more time to finish reading it.")


def stories(*lines):
    return read_text("b.txt", "\n".join(lines) + "\n").stories


def test_a_benefit_that_adds_a_goal_is_never_alike():
    assert adds_a_goal("I can get back to the data and import it", "I can get back to the data")
    assert not adds_a_goal("I can get back to the data", "I can get back to the data and import it")
    assert not shared_words_alike("I can get back to the data and import it", "I can get back to the data")
    assert shared_words_alike("I can keep reading it for longer", "I can keep reading it longer")
    assert not shared_words_alike("I do not pay a late fee", "I can keep reading it for longer")


def test_keeps_every_need_asks_the_judge_before_setting_a_benefit_aside():
    src = stories(*LATE_FEE)
    merged = "As a library member, I want to extend a borrowed book online, so that I can keep reading it for longer."
    never = keeps_every_need(merged, src, same_need=SameNeed(lambda aside, kept, *means: False))
    assert not never.kept and "US-1's ends" in never.reason
    always = keeps_every_need(merged, src, same_need=SameNeed(lambda aside, kept, *means: True))
    assert always.kept and sorted(x.kind for x in always.said) == ["ends", "means"]  # "library member" names "member"
    # a role or means is still set aside without the judge: duplicates ask for the same thing
    assert keeps_every_need(merged, src, same_need=True).lost == never.lost


@pytest.fixture(scope="module")
def by_meaning(embedder):
    return same_need_by_meaning(embedder)


def test_the_late_fee_duplicates_keep_both_benefits(by_meaning):
    src = stories(*LATE_FEE)
    found = merge_proposals(src, same_need=by_meaning)
    assert found and all(m.kept for m in found)
    for m in found:
        assert "late fee" in m.text and "keep reading it for longer" in m.text, m.text
        assert all(x.kind != "ends" for x in m.said)
        assert Validator().check([m.text], src, keep_needs=True, same_need=by_meaning).accepted


def test_one_goal_in_two_wordings_is_written_once(by_meaning):
    src = stories(*SAME_GOAL)
    first = merge_proposals(src, same_need=by_meaning)[0]
    assert first.kept and ("keep reading it" in first.text) != ("more time" in first.text), first.text
    assert [x.kind for x in first.said if x.kind == "ends"] == ["ends"]


def test_the_judge_by_meaning_reads_the_real_model(embedder):
    judge = EmbeddedBenefits(embedder)
    assert judge.cosine("I do not pay a late fee", "I can keep reading it for longer") < judge.cut
    assert judge("I can start using the app right away", "I can begin using the application right away")
    assert not judge("I do not pay a late fee", "I can keep reading it for longer")


def test_the_judge_asks_less_of_the_benefits_of_two_stories_that_want_one_thing_in_near_words(embedder):
    """Benefits a little below the cut are one goal when the stories' means are nearly one sentence (cosine
    at least CLOSE_MEANS_COSINE); far means leave the cut as it is. The cosines are the real model's."""
    from storytransformer.similarity.benefits import CLOSE_MEANS_ALIKE_COSINE, CLOSE_MEANS_COSINE

    judge = EmbeddedBenefits(embedder)
    aside, kept = "the menu stays current", "I can keep the menu up to date"
    near = ("edit the menu's details", "modify the menu's information")
    far = ("edit the menu's details", "print the monthly invoice")
    assert CLOSE_MEANS_ALIKE_COSINE <= judge.cosine(aside, kept) < judge.cut
    assert judge.cosine(*near) >= CLOSE_MEANS_COSINE > judge.cosine(*far)
    assert judge(aside, kept, *near) and judge(kept, aside, *reversed(near))
    assert not judge(aside, kept, *far) and not judge(aside, kept)  # far means, or none known: the cut itself
    assert not judge("I do not pay a late fee", "I can keep reading it for longer", *near)  # another goal stays apart


def test_two_near_restatements_are_merged_with_their_benefit_written_once(by_meaning):
    src = stories("US-4: As a chef, I want to be able to modify the menu's information, so that I can keep the menu up to date.",
                  "US-5: As a chef, I need to edit the menu's details so that the menu stays current.")
    first = merge_proposals(src, same_need=by_meaning)[0]
    assert first.kept and ("up to date" in first.text) != ("stays current" in first.text), first.text
    assert [x.kind for x in first.said if x.kind == "ends"] == ["ends"]


def test_with_similarity_off_the_judge_needs_no_model():
    config = Config()
    config.similarity.enabled = False
    assert same_need_by_meaning(config=config.similarity).benefits_alike is shared_words_alike


def test_a_known_cosine_decides_for_an_editor_without_a_model():
    src = stories(*LATE_FEE)
    assert all("late fee" in m.text for m in merge_proposals(src, same_need_by_cosine(0.05)) if m.kept)
    assert any("late fee" not in m.text for m in merge_proposals(src, same_need_by_cosine(0.95)) if m.kept)
    assert same_need_by_cosine(None).benefits_alike is shared_words_alike
    # a benefits' cosine just below the cut: written once only where the means are known to be close
    aside, kept = "the groups stay current", "I can keep the groups up to date"
    assert same_need_by_cosine(0.6, 0.9).benefits_alike(aside, kept, "edit a group", "modify a group")
    assert not same_need_by_cosine(0.6, 0.5).benefits_alike(aside, kept, "edit a group", "print a bill")
    assert not same_need_by_cosine(0.6).benefits_alike(aside, kept)


def test_a_duplicate_finding_carries_each_pairs_benefit_cosine(tmp_path, embedder):
    """The daemon's ST603 finding tells the editor, which holds no model, how alike the benefits are."""
    import shutil
    from pathlib import Path

    from storytransformer.similarity import semantic_findings
    from storytransformer.similarity.benefits import ALIKE_COSINE, CLOSE_MEANS_COSINE
    from storytransformer.workspace import Workspace

    root = tmp_path / "ws"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples", root)
    library = root / "library.stories.txt"
    library.write_text(library.read_text("utf-8") + "US-20: As a member, I want to extend the loan of a borrowed "
                       "book on the website, so that I can keep reading it for longer.\n", "utf-8")
    ws = Workspace.from_paths([str(root)], Config())
    found = {f.story_id: f for f in semantic_findings(ws) if f.code == "ST603" and f.file == str(library)}
    assert "US-10" in found, sorted(found)
    f = found["US-10"]
    cosines = dict(zip((r.story_id for r in f.related), f.data["benefit_cosines"]))
    assert len(f.data["benefit_cosines"]) == len(f.related)
    assert cosines["US-1"] < ALIKE_COSINE  # "I do not pay a late fee": another goal than "keep reading it longer"
    assert cosines["US-20"] > 0.99  # the same benefit word for word
    means = dict(zip((r.story_id for r in f.related), f.data["means_cosines"]))
    assert len(means) == len(f.related)
    # "renew a borrowed book online" / "... on the website": one want, close enough for the lower benefits' cut;
    # "extend the loan of a borrowed book on the website" says it in more other words
    assert means["US-1"] >= CLOSE_MEANS_COSINE > means["US-20"] > 0.5


def test_the_editor_and_the_cli_judge_the_same_benefits_with_the_same_cosine(embedder):
    """The editor's merge uses the cosines a duplicate finding carries (computed by the index); the CLI's
    merge embeds the benefits itself. Both must embed one text per part, whatever the spacing."""
    from storytransformer.similarity.index import SimilarityIndex

    a, b = stories("US-1: As a member, I want to renew a  borrowed book online, so that I   do not pay a late fee.",
                   "US-2: As a library member, I want to extend a borrowed book online, so that I can keep reading it.")
    index = SimilarityIndex.build([a, b], Config().similarity, embedder=embedder)
    judge = EmbeddedBenefits(embedder)
    assert judge.cosine(a.ends.text, b.ends.text) == pytest.approx(index.ends_cosine(a, b), abs=1e-5)
    assert judge.cosine(a.means.text, b.means.text) == pytest.approx(index.means_cosine(a, b), abs=1e-5)

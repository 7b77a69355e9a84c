"""A merged story keeps everything its sources asked for: every means, every distinct ends, every role.

The deterministic merge builds merges that keep them, the validator refuses a proposal that drops
one (naming it), and ``suggest`` shows at most three distinct proposals.
"""

from types import SimpleNamespace

from storytransformer.cli.suggest import top_proposals
from storytransformer.engine.candidates import merge_candidates
from storytransformer.engine.grounding import Validator
from storytransformer.formats.text import read_text
from storytransformer.similarity.merge import build_merge, merge_cluster
from storytransformer.similarity.needs import keeps_every_need

LATE_FEE = ("US-1: As a member, I want to renew a borrowed book online, so that I do not pay a late fee.",
            "US-10: As a member, I want to renew a borrowed book online, so that I can keep reading it for longer.")


def stories(*lines):
    return read_text("b.txt", "\n".join(lines) + "\n").stories


def test_late_fee_merge_keeps_both_ends():
    src = stories(*LATE_FEE)
    merged = merge_cluster(src)
    assert merged == ("As a member, I want to renew a borrowed book online, "
                      "so that I do not pay a late fee and I can keep reading it for longer.")
    assert keeps_every_need(merged, src).kept
    assert Validator().check([merged], src, keep_needs=True).accepted


def test_what_the_editor_applied_is_refused_naming_the_lost_ends():
    src = stories(*LATE_FEE)
    check = keeps_every_need("As a member, I want to renew a borrowed book online, "
                             "so that I can keep reading it for longer.", src)
    assert not check.kept
    assert "US-1's ends" in check.reason and "'late'" in check.reason and "'fee'" in check.reason
    # a dropped negation loses the need too
    assert not keeps_every_need("As a member, I want to renew a borrowed book online, so that I pay a late fee "
                                "and I can keep reading it for longer.", src).kept


def test_a_merge_that_drops_a_means_is_refused_with_a_reason_naming_it():
    src = stories("US-3: As an editor, I want to publish articles, so that readers see them.",
                  "US-4: As an editor, I want to delete articles, so that readers see them.")
    merge = build_merge(src)
    assert merge.text is None and "US-4's means" in merge.reason and "'delete'" in merge.reason
    g = Validator().check(["As an editor, I want to publish articles, so that readers see them."], src, keep_needs=True)
    assert not g.accepted
    assert any("US-4's means" in r and "'delete'" in r for r in g.reasons)


def test_the_more_specific_means_and_a_role_naming_both_are_kept():
    src = stories("As a member, I want to renew a book.",
                  "As a library member, I want to renew a borrowed book online.")
    assert merge_cluster(src) == "As a library member, I want to renew a borrowed book online."
    lost_role = keeps_every_need("As a member, I want to renew a borrowed book online.", src)
    assert not lost_role.kept and "role" in lost_role.reason and "'library'" in lost_role.reason


def test_merge_candidates_of_near_identical_stories_are_few_and_all_keep_every_need():
    src = stories(*LATE_FEE)
    found = merge_candidates(src)
    assert 1 <= len(found) <= 3
    assert all(keeps_every_need(c.stories[0], src).kept for c in found)


def proposal(text, accepted=True):
    return SimpleNamespace(stories=(text,), accepted=accepted)


def test_suggest_shows_at_most_three_distinct_proposals_best_first():
    found = [proposal("As a member, I want A."), proposal("as a member, I want a"), proposal("As a member, I want B."),
             proposal("As a member, I want C."), proposal("As a member, I want D."), proposal("rejected", False)]
    shown = top_proposals(found, 3)
    assert [p.stories[0] for p in shown if p.accepted] == ["As a member, I want A.", "As a member, I want B.",
                                                           "As a member, I want C."]
    assert shown[-1].stories == ("rejected",)  # rejected ones only reach the output with --show-rejected


PUBLISHER = ("US-1: As a Publisher, I want to store my data quickly and easily online.",
             "US-2: As a data publisher, I'd like a fast, simple way to put my data online for storage.")


def test_duplicates_keep_one_wording_and_list_the_other_as_said_by_its_source():
    from storytransformer.similarity.merge import merge_proposals
    from storytransformer.similarity.needs import coverage

    src = stories(*PUBLISHER)
    assert build_merge(src).text is None  # as overlaps: two wordings of the means, one atomic story keeps one
    found = merge_proposals(src, same_need=True)
    assert 1 <= len(found) <= 4 and all(m.kept for m in found)
    first = found[0]
    assert first.text == "As a data publisher, I'd like a fast, simple way to put my data online for storage."
    assert [str(x) for x in first.said] == ["US-1's means 'store my data quickly and easily online' (said by US-2)"]
    assert dict(first.provenance) == {"role": "US-2", "means": "US-2"}
    assert Validator().check([first.text], src, keep_needs=True, same_need=True).accepted
    assert not Validator().check([first.text], src, keep_needs=True).accepted  # overlaps may set nothing aside
    cov = coverage(first.text, src, keeps_every_need(first.text, src, same_need=True))
    assert cov.total == 6 and cov.present + cov.said == 6 and cov.said >= 1
    # the other wording as an alternative, with the role that names both ("data publisher" for "Publisher")
    assert {m.text for m in found[1:]} == {"As a data publisher, I want to store my data quickly and easily online."}


def test_a_part_only_one_duplicate_has_is_kept_not_set_aside():
    from storytransformer.similarity.merge import merge_proposals

    src = stories("US-1: As a member, I want to extend a loan, so that I do not pay a late fee.",
                  "US-2: As a library member, I want to renew a borrowed book.")
    for m in merge_proposals(src, same_need=True):
        assert "so that I do not pay a late fee" in m.text  # only US-1 gives a benefit: nothing says it for it
        assert all(x.kind != "ends" for x in m.said)
    # without a counterpart of the same kind a missing part is lost, even for duplicates
    check = keeps_every_need("As a member, I want to extend a loan.", src, same_need=True)
    assert not check.kept and "US-1's ends" in check.reason


def test_an_ends_written_in_order_to_is_merged_with_template_words_only():
    from storytransformer.similarity.merge import merge_proposals

    src = stories("US-1: As a consumer, I want to load a Data Package from R.",
                  "US-2: As a data consumer, I need to import a Data Package into R in order to begin exploring it.")
    found = merge_proposals(src, same_need=True)
    assert found[0].kept and "so that I can begin exploring it" in found[0].text
    assert all(Validator().check([m.text], src, keep_needs=True, same_need=True).accepted for m in found)


def test_an_ends_first_source_merges_role_first():
    """'To <ends>, I, as a <role>, want <means>' and 'So that ..., as the ...' give a story that starts with
    the role, has its subject, and says the reasons after the means in lower case."""
    src = stories("To keep reading it for longer, I, as a member, want to renew a borrowed book online.",
                  "So that I do not pay a late fee, as the member I need to renew a borrowed book online.")
    merged = merge_cluster(src)
    assert merged == ("As a member, I want to renew a borrowed book online, "
                      "so that I can keep reading it for longer and I do not pay a late fee.")
    assert Validator().check([merged], src, keep_needs=True).accepted


def test_a_doubled_that_in_a_source_ends_is_not_joined_into_the_merge():
    """"so that that I can start" is a slip in the source: joined to another ends it would read
    "... and that I can start"; the merge drops the repeated "that" (a function word: nothing is lost)."""
    from storytransformer.similarity.merge import merge_proposals

    src = stories("US-1: As a consumer, I want to load a Data Package from R, so that that I can start playing with it.",
                  "US-2: As a consumer, I want to load a Data Package from R, so that I can explore it right away.")
    found = merge_proposals(src)
    assert found[0].kept
    assert "that that" not in found[0].text and "and that" not in found[0].text, found[0].text
    assert "I can start playing with it" in found[0].text and "I can explore it right away" in found[0].text
    assert dict(found[0].provenance)["ends"] == "US-1+US-2"

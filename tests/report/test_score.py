"""The quality score: 100 x share of stories with no warning or error."""

from storytransformer.report.score import quality_score


def f(story_id, severity, file="a.txt"):
    return {"story_id": story_id, "severity": severity, "file": file, "code": "ST101"}


def test_share_of_stories_without_warning_or_error():
    findings = [f("S1", "warning"), f("S2", "error")]
    assert quality_score(["S1", "S2", "S3", "S4"], findings) == 50.0


def test_info_and_hint_do_not_lower_the_score():
    assert quality_score(["S1", "S2"], [f("S1", "info"), f("S2", "hint")]) == 100.0


def test_many_findings_on_one_story_count_once():
    findings = [f("S1", "warning"), f("S1", "warning"), f("S1", "error")]
    assert quality_score(["S1", "S2", "S3"], findings) == 66.7


def test_findings_of_other_stories_are_ignored():
    assert quality_score(["S1"], [f("S9", "error")]) == 100.0


def test_no_stories_no_score():
    assert quality_score([], [f("S1", "error")]) is None


def test_key_across_files_keeps_equal_ids_apart():
    findings = [f("US-1", "warning", file="a.txt")]
    keys = [("a.txt", "US-1"), ("b.txt", "US-1")]
    assert quality_score(keys, findings, key=lambda r: (r["file"], r["story_id"])) == 50.0

"""What changed between two snapshots: matching by (story id, code), reading old snapshots."""

import json

import pytest

from storytransformer.report.compare import SnapshotError, compare, findings_of_text, read_snapshot
from storytransformer.report.page import embed_json


def f(story_id, code, line=1, message="m"):
    return {"story_id": story_id, "code": code, "severity": "warning", "file": "a.txt", "line": line, "message": message}


def test_added_removed_unchanged_by_story_and_code():
    old = [f("S1", "ST201"), f("S2", "ST701"), f("S3", "ST301")]
    new = [f("S1", "ST201", line=9), f("S3", "ST901"), f("S4", "ST701")]
    c = compare(old, new)
    assert {(x["story_id"], x["code"]) for x in c["added"]} == {("S3", "ST901"), ("S4", "ST701")}
    assert {(x["story_id"], x["code"]) for x in c["removed"]} == {("S2", "ST701"), ("S3", "ST301")}
    assert [(x["story_id"], x["code"], x["line"]) for x in c["unchanged"]] == [("S1", "ST201", 9)]  # moved, same finding
    assert c["counts"] == {"added": 2, "removed": 2, "unchanged": 1, "old_total": 3, "new_total": 3}
    by_rule = {r["code"]: (r["added"], r["removed"], r["net"]) for r in c["by_rule"]}
    assert by_rule == {"ST301": (0, 1, -1), "ST701": (1, 1, 0), "ST901": (1, 0, 1)}


def test_repeated_keys_match_by_count():
    old = [f("S1", "ST601"), f("S1", "ST601")]
    new = [f("S1", "ST601"), f("S1", "ST601"), f("S1", "ST601")]
    c = compare(old, new)
    assert c["counts"]["unchanged"] == 2 and c["counts"]["added"] == 1 and c["counts"]["removed"] == 0
    assert compare(new, old)["counts"]["removed"] == 1


def test_identical_snapshots_have_no_changes():
    same = [f("S1", "ST201"), f("S2", "ST701")]
    c = compare(same, list(same))
    assert c["added"] == [] and c["removed"] == [] and len(c["unchanged"]) == 2


def test_reads_check_json_report_data_and_report_html(tmp_path):
    findings = [f("S1", "ST201")]
    check = tmp_path / "check.json"
    check.write_text(json.dumps(findings))
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"format": "storytransformer-report", "findings": findings}))
    page = tmp_path / "old.html"
    page.write_text('<!DOCTYPE html><html><body><script type="application/json" '
                    f'id="storytransformer-report-data">{embed_json({"findings": findings})}</script></body></html>')
    for p in (check, data, page):
        assert read_snapshot(p) == findings, p


def test_embedded_json_survives_script_closing_text():
    nasty = [f("S1", "ST201", message="</script><script>alert(1)</script> <!-- \u2028")]
    text = f'<html><script type="application/json" id="storytransformer-report-data">{embed_json({"findings": nasty})}</script></html>'
    assert "</script><script>alert" not in text
    assert findings_of_text(text, "x.html") == nasty


def test_directory_uses_the_checker(tmp_path):
    assert read_snapshot(tmp_path, lambda d: [f("S1", "ST1")]) == [f("S1", "ST1")]
    with pytest.raises(SnapshotError, match="directory"):
        read_snapshot(tmp_path)


@pytest.mark.parametrize("content, message", [
    ("<html><body>no data</body></html>", "without a StoryTransformer report"),
    ("{not json", "not JSON"),
    ('{"a": 1}', "expected a report"),
    ('[{"code": "ST1"}]', "finding 1 has no"),
])
def test_bad_snapshots_say_what_is_wrong(tmp_path, content, message):
    p = tmp_path / "old.json"
    p.write_text(content)
    with pytest.raises(SnapshotError, match=message) as e:
        read_snapshot(p)
    assert str(p) in str(e.value)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(SnapshotError, match="cannot read"):
        read_snapshot(tmp_path / "nope.html")

"""``storytransformer report``: real subprocesses on the bundled examples and the real backlogs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from storytransformer.report.compare import data_of_html, findings_of_text

from .conftest import ROOT, run_cli


def report_data(html_path) -> dict:
    return data_of_html(html_path.read_text("utf-8"), str(html_path))


def test_report_holds_the_same_findings_as_check(examples, tmp_path):
    out = tmp_path / "report.html"
    r = run_cli("report", str(examples), "-o", str(out), "--no-semantic", "--no-estimate")
    assert r.returncode == 0, r.stderr
    check = run_cli("check", str(examples), "--no-semantic", "--format", "json", "--no-cache")
    expected = sorted((f["story_id"], f["code"]) for f in json.loads(check.stdout))
    html = out.read_text("utf-8")
    assert html.startswith("<!DOCTYPE html>")
    found = findings_of_text(html, str(out))
    assert sorted((f["story_id"], f["code"]) for f in found) == expected
    data = report_data(out)
    assert data["totals"]["findings"] == len(expected)
    assert data["totals"]["stories"] == 21
    assert sum(r["count"] for r in data["rules"]) == len(expected)
    # One chart per view, each an inline SVG drawn by matplotlib, nothing fetched from elsewhere.
    assert html.count('<figure class=chart data-chart=') == 3
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "https://" not in html.split('id="storytransformer-report-data"')[0]
    assert "<link" not in html and "src=" not in html.split("<svg")[0]


def test_score_per_file_follows_its_definition(examples, tmp_path):
    out = tmp_path / "report.html"
    assert run_cli("report", str(examples), "-o", str(out), "--no-semantic", "--no-estimate").returncode == 0
    data = report_data(out)
    library = next(f for f in data["files"] if f["file"].endswith("library.stories.txt"))
    flagged = {f["story_id"] for f in data["findings"]
               if f["file"] == library["file"] and f["severity"] in ("warning", "error")}
    assert library["score"] == round(100 * (library["stories"] - len(flagged)) / library["stories"], 1)
    assert library["score"] < 100
    search = next(f for f in data["files"] if f["file"].endswith("search.feature"))
    assert search["findings"] == 0 and search["score"] == 100.0


def test_compare_with_an_older_report(examples, tmp_path):
    old = tmp_path / "old.html"
    assert run_cli("report", str(examples), "-o", str(old), "--no-semantic", "--no-estimate").returncode == 0
    # Fix one problem: drop the exact duplicate US-6 of US-1, and add a vague story.
    lib = examples / "library.stories.txt"
    lines = [line for line in lib.read_text("utf-8").splitlines() if not line.startswith("US-6:")]
    lines.insert(2, "US-99: As a member, I want a nice and intuitive catalogue, so that I find books.")
    lib.write_text("\n".join(lines) + "\n", "utf-8")
    new, data_file = tmp_path / "new.html", tmp_path / "new.json"
    r = run_cli("report", str(examples), "-o", str(new), "--no-semantic", "--no-estimate",
                "--compare", str(old), "--json", str(data_file))
    assert r.returncode == 0, r.stderr
    cmp = json.loads(data_file.read_text("utf-8"))["compare"]
    removed = {(f["story_id"], f["code"]) for f in cmp["removed"]}
    added = {(f["story_id"], f["code"]) for f in cmp["added"]}
    assert ("US-6", "ST601") in removed and ("US-1", "ST601") in removed
    assert added and all(sid == "US-99" for sid, _ in added)
    assert ("US-99", "ST701") in added
    assert cmp["counts"]["unchanged"] == cmp["counts"]["old_total"] - len(removed)
    html = new.read_text("utf-8")
    assert "<section id=changes>" in html and "data-changes=added" in html and "data-changes=removed" in html


def test_compare_with_check_json_and_with_a_directory(examples, tmp_path):
    old_dir = tmp_path / "old"
    import shutil

    shutil.copytree(examples, old_dir)
    check_json = tmp_path / "old.json"
    r = run_cli("check", str(old_dir), "--no-semantic", "--format", "json", "-o", str(check_json), "--exit-zero")
    assert r.returncode == 0, r.stderr
    (examples / "search.feature").unlink()
    for old in (check_json, old_dir):
        data_file = tmp_path / f"{old.name}.data.json"
        r = run_cli("report", str(examples), "-o", str(tmp_path / "r.html"), "--no-semantic", "--no-estimate",
                    "--compare", str(old), "--json", str(data_file))
        assert r.returncode == 0, r.stderr
        cmp = json.loads(data_file.read_text("utf-8"))["compare"]
        assert cmp["added"] == [] and cmp["removed"] == [], old  # search.feature had no findings
        assert cmp["counts"]["unchanged"] > 10


@pytest.mark.parametrize("args, message", [
    (["no-such-dir"], "no-such-dir: no such file or directory"),
    (["{examples}", "--compare", "{examples}/library.stories.txt"], "--compare"),
    (["{examples}", "--compare", "{tmp}/missing.html"], "cannot read"),
    (["{examples}", "--max-merges", "-1"], "--max-merges"),
    (["{examples}", "-o", "{tmp}/no/such/dir/r.html"], "cannot write"),
])
def test_bad_input_exits_2_with_a_clear_message(examples, tmp_path, args, message):
    args = [a.format(examples=examples, tmp=tmp_path) for a in args]
    r = run_cli("report", *args, "--no-semantic", "--no-estimate", *(["-o", str(tmp_path / "r.html")] if "-o" not in args else []))
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_estimate_settings_name_the_key(examples, tmp_path):
    (examples / ".storytransformer.toml").write_text("[estimate]\ndecode_tokens_per_s = -1\n")
    r = run_cli("report", str(examples), "-o", str(tmp_path / "r.html"), "--no-semantic")
    assert r.returncode == 2
    assert "estimate.decode_tokens_per_s' must be greater than 0" in r.stderr
    assert ".storytransformer.toml" in r.stderr


def test_progress_bar_on_a_terminal(examples, tmp_path):
    """stderr a terminal: rich draws the steps; a pipe: no progress output at all."""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
    proc = subprocess.Popen([sys.executable, "-m", "storytransformer", "report", str(examples), "-o",
                             str(tmp_path / "r.html"), "--no-semantic", "--no-estimate"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=300)
    os.close(leader)
    seen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "Checking stories" in seen or "Reading stories" in seen
    piped = run_cli("report", str(examples), "-o", str(tmp_path / "r2.html"), "--no-semantic", "--no-estimate")
    assert "stories" in piped.stderr and "Checking stories" not in piped.stderr


def test_real_backlogs(real_backlogs, tmp_path):
    out, data_file = tmp_path / "real.html", tmp_path / "real.json"
    r = run_cli("report", str(real_backlogs), "-o", str(out), "--no-semantic", "--no-estimate", "--json", str(data_file))
    assert r.returncode == 0, r.stderr
    data = json.loads(data_file.read_text("utf-8"))
    assert data["totals"]["files"] == 22
    assert data["totals"]["stories"] > 1500
    assert data["totals"]["findings"] > 100
    assert all(f["score"] is not None and 0 <= f["score"] <= 100 for f in data["files"])
    assert 0 < data["totals"]["score"] < 100
    html = out.read_text("utf-8")
    assert html.count("<tr data-rule=") == data["totals"]["findings"]
    for rule in data["rules"][:5]:  # the chart's labels are text in the SVG
        assert f"{rule['code']} {rule['name']}" in html

"""The HTML report in a real headless Chromium (Debian's, driven by playwright-core): no console
errors, no request leaves the page, the charts and the cluster graphs are drawn, and the filters
change the visible rows. A full-page screenshot is kept under pytest's tmp dir (path printed).

Tools: scripts/test-tools.d/30-chromium.sh installs chromium and playwright-core.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "e2e" / "report" / "check_report.js"
PLAYWRIGHT = ROOT / "tests" / "e2e" / "report" / "node_modules" / "playwright-core"
INSTALL = "scripts/test-tools.d/30-chromium.sh"

pytestmark = pytest.mark.slow


def chromium() -> str:
    found = os.environ.get("STORYTRANSFORMER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip(f"chromium is not installed (no 'chromium' on PATH; {INSTALL} installs Debian's chromium)")
    if not shutil.which("node") or not PLAYWRIGHT.is_dir():
        pytest.fail(f"chromium is here but node or playwright-core is not (expected {PLAYWRIGHT.relative_to(ROOT)}): "
                    f"run {INSTALL}")
    return found


def storytransformer(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def open_in_chromium(report: Path, screenshot: Path) -> dict:
    r = subprocess.run(["node", str(SCRIPT), str(report), str(screenshot), chromium()], cwd=ROOT,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"browser script failed:\n{r.stderr[-3000:]}"
    print(f"\nscreenshot of {report.name}: {screenshot}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def assert_renders_cleanly(page: dict, data: dict) -> None:
    assert page["consoleErrors"] == [] and page["pageErrors"] == []
    assert page["externalRequests"] == []  # self-contained: nothing fetched from a network
    charts = {c["name"]: c for c in page["charts"]}
    assert set(charts) == {"rules", "files", "scores"}
    assert all(c["svg"] and c["width"] > 200 for c in charts.values())
    for rule in data["rules"][:5]:
        assert rule["code"] in charts["rules"]["text"]
    assert page["rowsTotal"] == data["totals"]["findings"] == page["rowsVisible"]


def searchable(f: dict) -> str:
    """What the page's search reads for one finding: the row's cells and the rule's name."""
    fix = f"Fix: {f['fix']}" if f.get("fix") else ""
    return " ".join([f["severity"], f["code"], f"{f['file']}:{f['line']}", f.get("story_label") or "",
                     f["message"], fix, f["rule"]]).lower()


def assert_filters_work(page: dict, data: dict) -> None:
    rule = page["afterRule"]
    expected = sum(1 for f in data["findings"] if f["code"] == rule["rule"])
    assert rule["visible"] == expected < page["rowsTotal"]
    assert rule["rules"] == [rule["rule"]]
    assert rule["counter"] == f"{expected} of {page['rowsTotal']}"
    assert page["afterNoMatch"] == 0
    assert len(page["searches"]) == 2  # a rule's name (only in the cell's title) and a file:line
    for search in page["searches"]:
        words = search["query"].lower().split()
        expected = sum(1 for f in data["findings"] if all(w in searchable(f) for w in words))
        assert search["visible"] == expected > 0, search
        assert search["counter"] == f"{expected} of {page['rowsTotal']}"
    assert page["afterClear"] == page["rowsTotal"]
    sev = page["afterSeverity"]
    assert sev["severities"] == [sev["severity"]]
    assert sev["visible"] == sum(1 for f in data["findings"] if f["severity"] == sev["severity"])


def test_examples_report_in_chromium(tmp_path):
    report, data_file = tmp_path / "examples-report.html", tmp_path / "examples-report.json"
    r = storytransformer("report", "examples", "-o", str(report), "--no-model", "--json", str(data_file))
    assert r.returncode == 0, r.stderr
    data = json.loads(data_file.read_text("utf-8"))
    page = open_in_chromium(report, tmp_path / "examples-report.png")
    assert_renders_cleanly(page, data)
    assert_filters_work(page, data)
    assert len(page["graphs"]) == len(data["clusters"]) >= 2
    for g, c in zip(page["graphs"], data["clusters"]):
        assert g["nodes"] == c["size"] and g["edges"] == len(c["edges"]) >= 1 and g["representative"] == 1
    assert {"size", "charts", "files", "findings", "clusters"} <= set(page["sections"])
    assert (tmp_path / "examples-report.png").stat().st_size > 20_000


def test_real_backlog_report_with_changes_in_chromium(real_backlogs, tmp_path):
    """Four real backlogs with semantic clusters, compared with a snapshot that lacked one file."""
    files = [str(p) for p in sorted(real_backlogs.glob("*.txt"))[:4]]
    old = tmp_path / "old.html"
    r = storytransformer("report", *files[:3], "-o", str(old), "--no-semantic", "--no-estimate")
    assert r.returncode == 0, r.stderr
    report, data_file = tmp_path / "real-report.html", tmp_path / "real-report.json"
    r = storytransformer("report", *files, "-o", str(report), "--no-model", "--compare", str(old), "--json", str(data_file))
    assert r.returncode == 0, r.stderr
    data = json.loads(data_file.read_text("utf-8"))
    assert data["compare"]["counts"]["added"] > 0
    page = open_in_chromium(report, tmp_path / "real-report.png")
    assert_renders_cleanly(page, data)
    assert_filters_work(page, data)
    assert "changes" in page["sections"]
    assert len(page["graphs"]) == min(len(data["clusters"]), 60) > 0

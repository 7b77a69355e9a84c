"""Counts per rule on the 22 real backlogs and precision on a hand-checked sample.

The sample's verdicts live in benchmarks/labels/rule_precision.csv (backlog file,
line, rule code, tp/fp, reason); they reference stories by position only, no
story text is copied. Prints a table and writes docs/benchmarks/rules.json and .md.

    python benchmarks/rule_quality.py
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from pathlib import Path

from storytransformer.config import Config
from storytransformer.lint import Linter
from storytransformer.rules import RULES
from storytransformer.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "backlogs" / "dalpiaz"
LABELS = ROOT / "benchmarks" / "labels" / "rule_precision.csv"
OUT = ROOT / "docs" / "benchmarks"


def main() -> None:
    ws = Workspace.from_paths([REAL], Config())
    findings = Linter(ws, use_disk_cache=False).check()
    flagged = {(Path(f.file).name, f.range.start.line + 1, f.code) for f in findings}
    counts = Counter(f.code for f in findings)
    stories_flagged = Counter()
    for code in counts:
        stories_flagged[code] = len({(f.file, f.story_id) for f in findings if f.code == code})
    labels = list(csv.DictReader(LABELS.open()))
    rows = []
    for code in sorted(RULES, key=lambda c: (len(c), c)):
        checked = [l for l in labels if l["code"] == code and (l["file"], int(l["line"]), code) in flagged]
        tp = sum(l["verdict"] == "tp" for l in checked)
        rows.append({"code": code, "name": RULES[code].name, "criterion": RULES[code].criterion,
                     "findings": counts.get(code, 0), "stories": stories_flagged.get(code, 0),
                     "checked": len(checked), "true_positives": tp,
                     "precision": round(tp / len(checked), 2) if checked else None})
    stale = [l for l in labels if (l["file"], int(l["line"]), l["code"]) not in flagged]
    lines = [f"# Rules on the real backlogs ({len(ws)} stories in {len(ws.files)} files)", "",
             f"{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/rule_quality.py` (semantic rules ST603-ST605",
             "are measured by the similarity benchmark). Precision = hand-checked true positives / checked findings,",
             "on a random sample of up to 10 flagged stories per rule (labels in benchmarks/labels/rule_precision.csv).",
             "", "| code | rule | criterion | findings | stories | checked | precision |", "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        p = "-" if r["precision"] is None else f"{r['precision']:.2f}"
        lines.append(f"| {r['code']} | {r['name']} | {r['criterion']} | {r['findings']} | {r['stories']} | {r['checked']} | {p} |")
    if stale:
        lines += ["", f"{len(stale)} labelled findings are no longer reported (rules changed since labelling)."]
    table = "\n".join(lines)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "rules.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "stories": len(ws),
                                                "rules": rows, "stale_labels": len(stale)}, indent=2) + "\n")
    (OUT / "rules.md").write_text(table + "\n")


if __name__ == "__main__":
    main()

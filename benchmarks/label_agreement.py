"""Agreement between the two annotators of the QUS label corpus, before adjudication.

Per criterion: how many stories each marked, F1 of annotator B scored against annotator A (the same
number the other way round), and Cohen's kappa over every story both labelled. Prints a table and
writes docs/benchmarks/labelling.json and .md.

    python benchmarks/label_agreement.py
"""

from __future__ import annotations

import json
import sys
import time

from qus_labels import CRITERIA, LABELS, ROOT, Score, fmt, kappa, labelled_backlogs, read_labels, score, stories

OUT = ROOT / "docs" / "benchmarks"


def main() -> int:
    both = sorted(set(labelled_backlogs("annotator-a")) & set(labelled_backlogs("annotator-b")))
    if not both:
        print(f"no backlog labelled by both annotators under {LABELS.relative_to(ROOT)}", file=sys.stderr)
        return 1
    universe = stories(both)
    a, b = read_labels("annotator-a"), read_labels("annotator-b")
    adjudicated = read_labels("adjudicated") if (LABELS / "adjudicated").is_dir() else None
    rows, pooled = [], Score(0, 0, 0)
    for c in CRITERIA:
        s = score(b[c], a[c], universe)
        pooled += s
        row = {"criterion": c, "a": len(a[c] & universe), "b": len(b[c] & universe), "both": s.tp,
               "f1": s.f1, "kappa": kappa(a[c], b[c], universe)}
        if adjudicated is not None:
            row["adjudicated"] = len(adjudicated[c] & universe)
        rows.append(row)
    lines = [f"# Agreement between the annotators ({len(universe)} stories in {len(both)} backlogs)", "",
             f"{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/label_agreement.py`. Two annotators labelled",
             "every story alone from docs/labelling.md; F1 scores one against the other, kappa is Cohen's over all",
             "stories. Figures are before adjudication; `adjudicated` counts the final defects.", "",
             "| criterion | annotator A | annotator B | both | F1 | kappa |" + (" adjudicated |" if adjudicated else ""),
             "|---|---:|---:|---:|---:|---:|" + ("---:|" if adjudicated else "")]
    for r in rows:
        lines.append(f"| {r['criterion']} | {r['a']} | {r['b']} | {r['both']} | {fmt(r['f1'])} | {fmt(r['kappa'])} |"
                     + (f" {r['adjudicated']} |" if adjudicated else ""))
    lines.append(f"| **pooled** | {sum(r['a'] for r in rows)} | {sum(r['b'] for r in rows)} | {pooled.tp} | "
                 f"{fmt(pooled.f1)} | |" + (" |" if adjudicated else ""))
    table = "\n".join(lines)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "labelling.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "stories": len(universe),
                                                    "backlogs": both, "criteria": rows, "pooled_f1": pooled.f1},
                                                   indent=2) + "\n")
    (OUT / "labelling.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

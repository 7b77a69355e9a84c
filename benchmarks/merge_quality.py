"""Do deterministic merges keep what their stories asked for?

For every pair labelled duplicate or overlap in benchmarks/labels/pairs/pairs.csv (real stories from
the backlogs, written paraphrases in b_text), builds the deterministic merge
(storytransformer.similarity.merge.build_merge) and reports:

- kept: the share of pairs whose merge keeps every need (every means, every distinct ends, every
  role; storytransformer.similarity.needs.keeps_every_need), and of those, the share the grounding
  validator also accepts (well-formed, atomic, minimal, nothing invented);
- refused: the share for which no single story keeps every need, by the part that would be lost;
- before: the same check on the merge the previous rule built (the most specific ends only, the first
  means when the actions differ), for comparison.

Prints the table and writes docs/benchmarks/merge_quality.md and .json.

    python benchmarks/merge_quality.py
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "docs" / "benchmarks"

from similarity_quality import REAL, load_pairs, workspace_of  # noqa: E402

from storytransformer.config import Config  # noqa: E402
from storytransformer.engine.grounding import Validator  # noqa: E402
from storytransformer.similarity import merge as M  # noqa: E402
from storytransformer.similarity.needs import keeps_every_need  # noqa: E402

LABELS = ("duplicate", "overlap")


def previous_merge(stories) -> str | None:
    """The merge the previous rule built: first means when the actions differ, most specific ends only."""
    usable = [s for s in stories if s.means is not None]
    if len(usable) < 2:
        return None
    roles = M._unique([M._clean(s.role.text) for s in usable if s.role])
    head = f"As a {M.join_words(roles, 'or')}, " if roles else ""
    means = M.merged_means([s.means.text for s in usable]) or M._clean(usable[0].means.text)
    with_ends = [s for s in usable if s.ends]
    tail = ""
    if with_ends:
        best = max(with_ends, key=lambda s: (M.specificity(s.ends.text), -usable.index(s)))
        tail = f", so that {M._clean(best.ends.text)}"
    return f"{head}I want to {means}{tail}."


def lost_parts(reason: str) -> list[str]:
    return sorted(set(re.findall(r"'s (role|means|ends|text) \(", reason)))


def main() -> int:
    if not REAL.is_dir():
        print("real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    config = Config()
    pairs = [p for p in load_pairs() if p["label"] in LABELS]
    ws, keys = workspace_of(pairs, config)
    by_key = {(s.file, s.id): s for s in ws.stories()}
    validator = Validator(config)
    rows = []
    for p in pairs:
        a, b = by_key[keys[p["a"]]], by_key[keys[p["b"] or p["id"]]]
        merge = M.build_merge([a, b])
        before = previous_merge([a, b])
        row = {"id": p["id"], "label": p["label"], "a": a.text, "b": b.text, "merged": merge.text,
               "kept": merge.text is not None and keeps_every_need(merge.text, [a, b]).kept,
               "reason": merge.reason, "lost": lost_parts(merge.reason),
               "before": before, "before_kept": before is not None and keeps_every_need(before, [a, b]).kept}
        if merge.text is not None:
            g = validator.check([merge.text], [a, b], keep_needs=True)
            row["validator_accepts"] = g.accepted
            row["validator_reasons"] = list(g.reasons)
        rows.append(row)
    summary = {}
    for label in (*LABELS, "all"):
        rs = [r for r in rows if label == "all" or r["label"] == label]
        n = len(rs)
        kept = [r for r in rs if r["kept"]]
        lost = Counter(part for r in rs if not r["kept"] for part in r["lost"])
        summary[label] = {"pairs": n, "kept": len(kept) / n, "refused": (n - len(kept)) / n,
                          "validator_accepts": sum(r.get("validator_accepts", False) for r in kept) / len(kept) if kept else None,
                          "before_kept": sum(r["before_kept"] for r in rs) / n,
                          "refused_for": dict(sorted(lost.items()))}
    seconds = time.perf_counter() - t0
    lines = ["# Merge quality: do deterministic merges keep every need?", "",
             f"Pairs labelled duplicate or overlap in benchmarks/labels/pairs/pairs.csv; written by "
             f"benchmarks/merge_quality.py on {time.strftime('%Y-%m-%d')} ({seconds:.1f} s).", "",
             "A merge keeps every need when every source's means and ends content words (function words aside, "
             "negations counted) are in it and its role covers every source's role. A refused pair gets no "
             "merge: one atomic story cannot keep both (most often two different actions).", "",
             "| pairs | n | keep every need | refused | merges the validator accepts | before: keep every need |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, s in summary.items():
        va = "-" if s["validator_accepts"] is None else f"{s['validator_accepts']:.0%}"
        lines.append(f"| {label} | {s['pairs']} | {s['kept']:.0%} | {s['refused']:.0%} | {va} | {s['before_kept']:.0%} |")
    lines += ["", "Refused because this part of a source would be lost (pairs, a pair may count twice): "
              + ", ".join(f"{k} {v}" for k, v in summary["all"]["refused_for"].items()), ""]
    lines += ["## Examples", ""]
    for r in [r for r in rows if r["kept"] and r["before"] != r["merged"]][:4]:
        lines += [f"- {r['id']} ({r['label']}): {r['a']!r} + {r['b']!r}", f"  - now: {r['merged']!r}",
                  f"  - before: {r['before']!r}"]
    for r in [r for r in rows if not r["kept"]][:4]:
        lines += [f"- {r['id']} ({r['label']}), refused: {r['a']!r} + {r['b']!r}", f"  - {r['reason']}"]
    not_accepted = [r for r in rows if r["kept"] and not r.get("validator_accepts")]
    if not_accepted:
        lines += ["", "Merges that keep every need but that the validator refuses (not shown to users):", ""]
        lines += [f"- {r['id']}: {r['merged']!r}: {'; '.join(r['validator_reasons'])}" for r in not_accepted[:6]]
    text = "\n".join(lines) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "merge_quality.md").write_text(text, encoding="utf-8")
    (OUT / "merge_quality.json").write_text(json.dumps({"summary": summary, "pairs": rows}, indent=1) + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How well `check` finds what annotators flag: precision, recall and F1 per QUS criterion.

Scored per story and criterion against the adjudicated labels in benchmarks/labels/qus/ (docs/labelling.md
says how they were made), on the backlogs held out from tuning (benchmarks/labels/qus/split.json), with
AQUSA's findings on the same stories scored the same way. Each backlog is checked on its own, as a team
would check its backlog, with the default configuration and the semantic rules. Rules that are off by
default are run too, but only for the per-rule table (their precision and recall on their own): the
per-criterion and pooled figures are what a user gets from `check` as shipped. Prints the tables and
writes docs/benchmarks/rules.json and .md.

With ``--judge-model FILE.gguf`` each backlog is also put through ``check --model-checks --select ST606``
on that model (the language model as the second judge of the index's near pairs: ST606 added, ST603
pairs it answers no to taken back; docs/similarity.md), ST606 counted as on; the results go to
rules-judge-model.json and .md instead. Slow on a CPU (about 4 s a near pair).

    python benchmarks/rule_quality.py [--part held_out|tune|all] [--no-semantic] [--judge-model FILE.gguf]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from qus_labels import (AQUSA_CRITERIA, CRITERIA, LABELS, REAL, ROOT, Score, Story, aqusa, fmt, labelled_backlogs,
                        read_labels, score, split, stories)

from storytransformer.config import Config
from storytransformer.lint import Linter
from storytransformer.rules import RULES
from storytransformer.workspace import Workspace

OUT = ROOT / "docs" / "benchmarks"


def judged(config: Config, judge_model: str):
    """(config, engine, run) for ``check --model-checks --select ST606`` on ``judge_model``, the model loaded once."""
    import copy
    from types import SimpleNamespace

    from storytransformer.cli import model_checks
    from storytransformer.engine import create_engine

    asking = copy.deepcopy(config)
    asking.engine.model = judge_model
    asking.select = ["ST606"]
    engine = create_engine(asking)
    flags = SimpleNamespace(model_budget=10 ** 9, model_timeout=1e9, thresholds={}, no_semantic=False)

    def run(ws, findings):
        return model_checks.run(flags, asking, list(ws.stories()), lambda kind, text: print(text, file=sys.stderr),
                                findings, engine)
    return run


def tool_findings(backlogs: list[str], semantic: bool,
                  judge_model: str = "") -> tuple[dict[str, set[Story]], dict[str, set[Story]]]:
    """(criterion -> stories flagged by default rules, rule code -> flagged stories), each backlog checked alone.

    Every rule runs, the ones off by default included (selected at their own severity), so that the
    per-rule table can say how each would do; only rules on by default count for the criteria."""
    by_criterion: dict[str, set[Story]] = defaultdict(set)
    by_code: dict[str, set[Story]] = defaultdict(set)
    config = Config()
    for code, r in RULES.items():
        if not r.default_on:
            config.severity[code] = r.severity.value
    ask = judged(config, judge_model) if judge_model else None
    for name in backlogs:
        ws = Workspace.from_paths([REAL / f"{name}.txt"], config)
        findings = Linter(ws, use_disk_cache=False).check()
        if semantic:
            from storytransformer.lint import enabled_rules
            from storytransformer.similarity import semantic_findings

            on = {r.code for r in enabled_rules(config)}
            findings += [f for f in semantic_findings(ws, config) if f.code in on]
        if ask is not None:
            findings = ask(ws, findings)
        for f in findings:
            story = (name, f.range.start.line + 1)
            if RULES[f.code].default_on or (ask is not None and f.code == "ST606"):
                by_criterion[RULES[f.code].criterion.replace("-", "_")].add(story)
            by_code[f.code].add(story)
    return by_criterion, by_code


def table(title: str, rows: list[tuple[str, Score, Score | None]]) -> list[str]:
    lines = [f"### {title}", "", "| criterion | gold | check P | check R | check F1 | AQUSA P | AQUSA R | AQUSA F1 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, ours, theirs in rows:
        t = ("-", "-", "-") if theirs is None else (fmt(theirs.precision), fmt(theirs.recall), fmt(theirs.f1))
        lines.append(f"| {name} | {ours.tp + ours.fn} | {fmt(ours.precision)} | {fmt(ours.recall)} | {fmt(ours.f1)} | "
                     f"{t[0]} | {t[1]} | {t[2]} |")
    return lines + [""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["held_out", "tune", "all"], default="held_out")
    ap.add_argument("--no-semantic", action="store_true", help="skip ST603-ST605 (no embedding model)")
    ap.add_argument("--judge-model", default="", metavar="FILE",
                    help="also check --model-checks --select ST606 on this model (scripts/install.sh --judge-model)")
    args = ap.parse_args()
    if args.judge_model and args.no_semantic:
        ap.error("--judge-model judges the embedding index's pairs: it needs the semantic rules")
    if not REAL.is_dir():
        print("real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)",
              file=sys.stderr)
        return 2
    labelled = set(labelled_backlogs("adjudicated"))
    parts = split()
    wanted = sorted(parts["tune"] + parts["held_out"]) if args.part == "all" else parts[args.part]
    backlogs = [b for b in wanted if b in labelled]
    if not backlogs:
        print(f"no adjudicated labels for the {args.part} backlogs under {LABELS.relative_to(ROOT)}", file=sys.stderr)
        return 2
    universe = stories(backlogs)
    gold = read_labels("adjudicated")
    ours, by_code = tool_findings(backlogs, semantic=not args.no_semantic, judge_model=args.judge_model)
    reference = aqusa()

    rows, pooled_all, pooled_kinds, aqusa_kinds = [], Score(0, 0, 0), Score(0, 0, 0), Score(0, 0, 0)
    for c in CRITERIA:
        s = score(ours.get(c, set()), gold[c], universe)
        t = score(reference[c], gold[c], universe) if c in AQUSA_CRITERIA else None
        pooled_all += s
        if t is not None:
            pooled_kinds += s
            aqusa_kinds += t
        rows.append((c, s, t))
    per_rule = []
    for code in sorted(RULES, key=lambda c: (len(c), c)):
        criterion = RULES[code].criterion.replace("-", "_")
        s = score(by_code.get(code, set()), gold.get(criterion, set()), universe)
        per_rule.append({"code": code, "name": RULES[code].name, "criterion": criterion,
                         "default_on": RULES[code].default_on, "needs_model": RULES[code].needs_model,
                         "flagged": s.tp + s.fp, "true": s.tp, "precision": s.precision, "recall": s.recall})

    gold_n = Counter({c: len(gold[c] & universe) for c in CRITERIA})
    lines = [f"# Rules against expert-style labels ({len(universe)} stories in {len(backlogs)} "
             f"{'held-out ' if args.part == 'held_out' else ''}backlogs)", "",
             f"{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/rule_quality.py"
             f"{'' if args.part == 'held_out' else ' --part ' + args.part}{' --no-semantic' if args.no_semantic else ''}"
             f"{' --judge-model ' + Path(args.judge_model).name if args.judge_model else ''}`."
             + (" ST606 counted as on: `check --model-checks --select ST606` on that model after the rules." if args.judge_model else ""),
             "Scored per story and criterion against the adjudicated labels of benchmarks/labels/qus/ (two annotators,",
             "docs/labelling.md; their agreement is in docs/benchmarks/labelling.md). Backlogs: " + ", ".join(backlogs) + ".",
             "AQUSA: its published output on the same stories (../shared/eval/aqusa), scored the same way.", ""]
    lines += table("Per criterion", rows)
    lines += table("Pooled", [("AQUSA's five criteria", pooled_kinds, aqusa_kinds), ("all 13 criteria", pooled_all, None)])
    lines += ["### Per rule (against its criterion's labels; rules off by default were selected for this table only)", "",
              "| code | rule | criterion | default | flagged | true | precision | recall |",
              "|---|---|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['code']} | {r['name']} | {r['criterion']} | "
              f"{'model' if r['needs_model'] else 'on' if r['default_on'] else 'off'} | {r['flagged']} | "
              f"{r['true']} | {fmt(r['precision'])} | {fmt(r['recall'])} |" for r in per_rule]
    model = [f"{r['code']} ({r['criterion']})" for r in per_rule
             if r["needs_model"] and not (args.judge_model and r["code"] == "ST606")]
    if model:
        lines += ["", "Default *model*: declared as needing a language model (`storytransformer rules` says so); `check` "
                  "does not run them, so they flag nothing here: " + ", ".join(model) + "."]
    uncovered = [c for c in CRITERIA if not any(r["criterion"] == c and not r["needs_model"] for r in per_rule)]
    if uncovered:
        lines += ["", "No rule of `check` for: " + ", ".join(uncovered) + "."]
    text = "\n".join(lines)
    print(text)

    def as_dict(s: Score | None):
        return None if s is None else {"tp": s.tp, "fp": s.fp, "fn": s.fn, "precision": s.precision,
                                       "recall": s.recall, "f1": s.f1}

    OUT.mkdir(parents=True, exist_ok=True)
    result = {"date": time.strftime("%Y-%m-%d"), "part": args.part, "backlogs": backlogs, "stories": len(universe),
              "semantic": not args.no_semantic, "gold": dict(gold_n),
              "criteria": {c: {"check": as_dict(s), "aqusa": as_dict(t)} for c, s, t in rows},
              "pooled": {"aqusa_criteria": {"check": as_dict(pooled_kinds), "aqusa": as_dict(aqusa_kinds)},
                         "all": {"check": as_dict(pooled_all)}},
              "rules": per_rule}
    suffix = ("" if args.part == "held_out" else f"-{args.part}") + ("-judge-model" if args.judge_model else "")
    result["judge_model"] = Path(args.judge_model).name if args.judge_model else None
    (OUT / f"rules{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / f"rules{suffix}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

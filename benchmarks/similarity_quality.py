"""How well the semantic rules find duplicates and overlaps: precision and recall on labelled pairs.

The pairs (benchmarks/labels/pairs/, docs/labelling.md) were labelled duplicate / overlap / related /
unrelated by two annotators and adjudicated: pairs drawn from the 22 real backlogs (near and far
neighbours, within and across backlogs) and written paraphrases with distractors. Each pair is scored
with the shipped model and thresholds, exactly as `check` relates two stories (ST603 duplicate, ST604
overlap, ST605 same goal for another role, which annotators count as an overlap). Reported on the
pairs whose real story belongs to the held-out backlogs (benchmarks/labels/qus/split.json), and on the
tuning part beside it (benchmarks/similarity_tune.py chooses the thresholds on that part only). The
held-out table is shown for the settings shipped before tuning, for the shipped ones (the threshold
rule) and for the learned pair judge (``judge = true``, storytransformer/similarity/pair_judge.py), from
one run.
Also the share of the 1,680 real stories that ST603, ST604 and ST605 flag when each backlog is checked
on its own, next to the precision of those findings on the labelled real pairs, and ST603 scored per
story against the `unique` labels of every story (benchmarks/labels/qus/, issue 15's corpus) on the
tune and held-out backlogs. Prints the tables and writes docs/benchmarks/similarity_quality.json|md.

    python benchmarks/similarity_quality.py
    python benchmarks/similarity_quality.py --second-model DIR   # only the rows of the judge with a second
        # model (similarity.second_model = DIR) beside the shipped rule and the plain judge, through the full
        # decision, and the cold and warm cost of checking the 22 backlogs with and without it; written as the
        # last section of docs/benchmarks/similarity_quality.md (the other rows are left as they are)
"""

from __future__ import annotations

import copy
import csv
import json
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAIRS = ROOT / "benchmarks" / "labels" / "pairs" / "pairs.csv"
REAL = ROOT.parent / "shared" / "data" / "backlogs" / "dalpiaz"
OUT = ROOT / "docs" / "benchmarks"
QUS = ROOT / "benchmarks" / "labels" / "qus"

from storytransformer.config import Config  # noqa: E402
from storytransformer.similarity.classify import Relation, Thresholds, classify  # noqa: E402
from storytransformer.similarity.index import SimilarityIndex  # noqa: E402
from storytransformer.workspace import Workspace  # noqa: E402

PREDICTED = {Relation.DUPLICATE: "duplicate", Relation.OVERLAP: "overlap", Relation.SAME_GOAL: "overlap",
             Relation.UNRELATED: "separate"}


def load_pairs() -> list[dict]:
    with PAIRS.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def workspace_of(pairs: list[dict], config: Config) -> tuple[Workspace, dict[str, tuple[str, str]]]:
    """One workspace with every backlog a pair names, plus the written stories as one file each;
    and a map from the pair's story reference to the (file, id) key of its story."""
    ws = Workspace(config)
    keys: dict[str, tuple[str, str]] = {}
    for name in sorted({ref.split(":")[0] for p in pairs for ref in (p["a"], p["b"]) if ref}):
        path = str(REAL / f"{name}.txt")
        ws.load(path)
        for s in ws.files[path].stories:
            keys[f"{name}:{s.range.start.line + 1}"] = (s.file, s.id)
    for p in pairs:
        if p["b_text"]:
            path = f"written/{p['id']}.txt"
            (s,) = ws.set_text(path, p["b_text"] + "\n").stories
            keys[p["id"]] = (s.file, s.id)
    return ws, keys


# The settings shipped before the pairs were used for tuning (no nearest-neighbour margin), so one run
# shows the figures before and after.
# The one-word sibling check has no setting: "before" has it too.
PREVIOUS = {"whole": 0.80, "duplicate": 0.50, "overlap": 0.40, "same_goal": 0.45, "role": 0.60, "ends": 0.0,
            "lexical_weight": 0.3, "near_best": 1.0, "distinct": 0.0, "judge": False}


def predictions(pairs: list[dict], config: Config, thresholds: list[Thresholds]) -> list[dict[str, str]]:
    """For each of ``thresholds``: pair id -> predicted class, every pair scored once as ``check`` does."""
    ws, keys = workspace_of(pairs, config)
    scoring = copy.deepcopy(config.similarity)
    scoring.judge = True  # the pair scores carry the judge's word-level features (the rule ignores them)
    index = SimilarityIndex.build(ws.stories(), scoring)
    scores = {p["id"]: index.pair_scores(keys[p["a"]], keys[p["b"] or p["id"]]) for p in pairs}
    return [{i: PREDICTED[classify(s, t)] for i, s in scores.items()} for t in thresholds]


def prf(pairs: list[dict], predicted: dict[str, str], cls: str) -> dict:
    tp = sum(p["label"] == cls and predicted[p["id"]] == cls for p in pairs)
    fp = sum(p["label"] != cls and predicted[p["id"]] == cls for p in pairs)
    fn = sum(p["label"] == cls and predicted[p["id"]] != cls for p in pairs)
    return {"gold": tp + fn, "flagged": tp + fp, "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None, "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None}


def share_flagged(config: Config, pairs: list[dict], parts: tuple[str, ...] = ("tune", "held_out")) -> dict:
    """Share of the real stories each semantic rule flags, each backlog checked alone (ST604 and ST605
    turned on for the count), and the precision of those findings on the labelled real pairs: of the
    labelled pairs of two real stories that a rule relates, the share annotators gave its class
    (duplicate for ST603; overlap or duplicate for ST604 / ST605, a duplicate being merged too)."""
    import copy

    from storytransformer.similarity import semantic_findings

    config = copy.deepcopy(config)
    config.select = list(dict.fromkeys([*getattr(config, "select", []), "ST603", "ST604", "ST605"]))
    labelled = {frozenset((p["a"], p["b"])): p["label"] for p in pairs if p["b"]}
    unique = unique_labels()
    split = json.loads((QUS / "split.json").read_text("utf-8"))
    part_of = {name: part for part in ("tune", "held_out") for name in split[part]}
    st603: dict[str, set[str]] = {"tune": set(), "held_out": set()}
    wanted = {"ST603": {"duplicate"}, "ST604": {"overlap", "duplicate"}, "ST605": {"overlap", "duplicate"}}
    flagged: Counter = Counter()
    hits: Counter = Counter()
    merge_worthy: Counter = Counter()  # labelled duplicate or overlap: pairs a team would merge
    judged: Counter = Counter()
    total = 0
    for path in sorted(p for p in REAL.glob("*.txt") if part_of.get(p.stem) in parts):
        ws = Workspace.from_paths([path], config)
        total += len(ws)
        for f in semantic_findings(ws, config):
            flagged[f.code] += 1
            me = f"{path.stem}:{f.range.start.line + 1}"
            if f.code == "ST603" and path.stem in part_of:
                st603[part_of[path.stem]].add(me)
            for r in f.related:
                label = labelled.get(frozenset((me, f"{path.stem}:{r.range.start.line + 1}")))
                if label is not None:
                    judged[f.code] += 1
                    hits[f.code] += label in wanted[f.code]
                    merge_worthy[f.code] += label in ("duplicate", "overlap")
    per_story = {}
    for part, stories in ((k, v) for k, v in st603.items() if k in parts):
        gold = {s for s, defect in unique.items() if defect and part_of[s.split(":")[0]] == part}
        total_part = sum(1 for s in unique if part_of[s.split(":")[0]] == part)
        tp = len(stories & gold)
        per_story[part] = {"stories": total_part, "gold": len(gold), "gold_share": len(gold) / total_part,
                           "flagged": len(stories), "share": len(stories) / total_part,
                           "precision": tp / len(stories) if stories else None, "recall": tp / len(gold) if gold else None}
    return {"stories": total, "codes": {code: {"share": flagged[code] / total, "flagged": flagged[code],
                                               "labelled_pairs": judged[code],
                                               "precision": hits[code] / judged[code] if judged[code] else None,
                                               "merge_worthy": merge_worthy[code] / judged[code] if judged[code] else None}
                                        for code in ("ST603", "ST604", "ST605")},
            "st603_against_unique": per_story}


def unique_labels() -> dict[str, bool]:
    """backlog:line -> whether annotators marked the story not unique (a duplicate of another story of
    its backlog, exact ones included), from the adjudicated QUS labels."""
    out = {}
    for path in sorted((QUS / "adjudicated").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                out[f"{path.stem}:{row['line']}"] = row["unique"] == "1"
    return out


def fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def agreement(pairs: list[dict]) -> dict:
    agree = sum(p["annotator_a"] == p["annotator_b"] for p in pairs)
    n = len(pairs)
    ca, cb = Counter(p["annotator_a"] for p in pairs), Counter(p["annotator_b"] for p in pairs)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return {"pairs": n, "agreement": agree / n, "kappa": (agree / n - expected) / (1 - expected)}


SECOND_WHOLE_GATES = (0.55, 0.60, 0.65, 0.70, 0.75)  # the whole gates swept with a second model
SECOND_HEADING = "### With a second model (`similarity.second_model`)"


def check_cost(second_model: str = "", cache_dir: str = "") -> float:
    """Seconds to check the 22 backlogs, each alone (a child process: its own model loads, its own
    cache directory, 2 torch threads), the judge deciding, with or without the second model."""
    import os
    import subprocess

    env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": cache_dir, "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, __file__, "--time-check", *(["--second-model", second_model] if second_model else [])],
                         env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def time_check(second_model: str) -> float:
    import torch

    torch.set_num_threads(2)
    config = Config()
    config.similarity.judge = True
    config.similarity.second_model = second_model or ""
    started = time.perf_counter()
    share_flagged(config, load_pairs())
    return time.perf_counter() - started


def second_model_rows(second_model: str) -> int:
    """The held-out pairs, the real backlogs' flagged share and the cost with ``similarity.second_model``,
    beside the shipped rule and the plain judge; replaces the last section of similarity_quality.md."""
    import tempfile

    config = Config()
    pairs = load_pairs()
    shipped = Thresholds.of(config.similarity)
    judge_t = replace(shipped, judge=True)
    scoring = copy.deepcopy(config)
    scoring.similarity.second_model = second_model
    second_t = Thresholds.of(scoring.similarity)
    gates = [replace(second_t, whole=w) for w in SECOND_WHOLE_GATES]
    rule, judged, second, *swept = predictions(pairs, scoring, [shipped, judge_t, second_t, *gates])
    held = [p for p in pairs if p["part"] == "held_out"]
    tune = [p for p in pairs if p["part"] == "tune"]
    result = {"date": time.strftime("%Y-%m-%d"), "model": Path(second_model).name, "held_out": {}}
    lines = [SECOND_HEADING, "",
             f"{result['date']}. Command: `python benchmarks/similarity_quality.py --second-model DIR` with DIR the",
             f"`{result['model']}` directory of `scripts/install.sh --second-judge`. The full decision of `check`",
             "(candidates, the judge's cuts, the z-score test; coefficients of judge_weights.py's second set, fitted",
             "on the tune labels by `benchmarks/similarity_judge.py --second-judge DIR --write`).", "",
             "The whole gate with the second model (`second_whole_threshold`): the lowest cosine of the packaged",
             "model at which a pair is judged at all. Chosen on the tune pairs: the highest gate with the best",
             "duplicate F1 there; the held-out columns are the test.", "",
             "| whole gate | tune P | tune R | tune F1 | held-out P | held-out R | held-out F1 |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    sweep = []
    for gate, predicted in zip(SECOND_WHOLE_GATES, swept):
        t_, h_ = prf(tune, predicted, "duplicate"), prf(held, predicted, "duplicate")
        sweep.append({"whole": gate, "tune": t_, "held_out": h_})
    best = max(sweep, key=lambda r: (round(r["tune"]["f1"] or 0.0, 6), r["whole"]))
    for r in sweep:
        mark = " (chosen)" if r is best else ""
        lines.append(f"| {r['whole']:.2f}{mark} | {fmt(r['tune']['precision'])} | {fmt(r['tune']['recall'])} | "
                     f"{fmt(r['tune']['f1'])} | {fmt(r['held_out']['precision'])} | {fmt(r['held_out']['recall'])} | "
                     f"{fmt(r['held_out']['f1'])} |")
    result["whole_gate"] = {"sweep": sweep, "chosen": best["whole"], "shipped": second_t.whole}
    if abs(best["whole"] - second_t.whole) > 1e-9:
        lines.append(f"\nNOTE: the shipped second_whole_threshold is {second_t.whole}, the tune pairs choose {best['whole']}.")
    lines += ["", "With the shipped gate:", "",
             "| class | gold | rule P | rule R | judge P | judge R | judge + second model P | R | target |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for cls, target in (("duplicate", "R >= 0.90 at P >= 0.90"), ("overlap", "R >= 0.80 at P >= 0.80")):
        a, j, s2 = prf(held, rule, cls), prf(held, judged, cls), prf(held, second, cls)
        result["held_out"][cls] = {"rule": a, "judge": j, "second": s2}
        lines.append(f"| {cls} (held-out pairs) | {a['gold']} | {fmt(a['precision'])} | {fmt(a['recall'])} | "
                     f"{fmt(j['precision'])} | {fmt(j['recall'])} | {fmt(s2['precision'])} | {fmt(s2['recall'])} | {target} |")
    with_second = copy.deepcopy(config)
    with_second.similarity.second_model = second_model
    shares = {"rule": share_flagged(config, pairs), "judge": share_flagged(_judging(config), pairs),
              "judge + second model": share_flagged(with_second, pairs)}
    result["flagged_share"] = shares
    lines += ["", f"Each of the 22 backlogs checked alone ({shares['rule']['stories']} stories), ST604 and ST605 turned on for",
              "the count; precision and merge-worthy as in the table above.", "",
              "| rule | settings | stories flagged | share | labelled pairs among them | precision | merge-worthy |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for code in ("ST603", "ST604", "ST605"):
        for name, sh in shares.items():
            r = sh["codes"][code]
            lines.append(f"| {code} | {name} | {r['flagged']} | {r['share']:.1%} | {r['labelled_pairs']} | "
                         f"{fmt(r['precision'])} | {fmt(r['merge_worthy'])} |")
    cost = {}
    for name, model in (("judge", ""), ("judge + second model", second_model)):
        with tempfile.TemporaryDirectory() as cache:
            cost[name] = {"cold_s": check_cost(model, cache), "warm_s": check_cost(model, cache)}
    result["cost"] = cost
    lines += ["", "Cost of checking the 22 backlogs one after another in one process (models loaded once, 2 torch",
              "threads, an empty embedding cache for cold, the same cache again for warm):", "",
              "| settings | cold s | warm s |", "|---|---:|---:|"]
    for name, c in cost.items():
        lines.append(f"| {name} | {c['cold_s']:.1f} | {c['warm_s']:.1f} |")
    text = "\n".join(lines)
    print(text)
    md = OUT / "similarity_quality.md"
    old = md.read_text("utf-8") if md.is_file() else ""
    at = old.find(SECOND_HEADING)
    md.write_text((old[:at] if at >= 0 else old.rstrip("\n") + "\n\n") + text + "\n", "utf-8")
    js = OUT / "similarity_quality.json"
    data = json.loads(js.read_text("utf-8")) if js.is_file() else {}
    data["second_model"] = result
    js.write_text(json.dumps(data, indent=2) + "\n")
    return 0


def _judging(config: Config) -> Config:
    out = copy.deepcopy(config)
    out.similarity.judge = True
    return out


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--second-model", metavar="DIR", help="only the rows with this similarity.second_model")
    ap.add_argument("--time-check", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.time_check:
        print(f"{time_check(args.second_model):.3f}")
        return 0
    if args.second_model:
        if not REAL.is_dir():
            print("real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)", file=sys.stderr)
            return 2
        return second_model_rows(args.second_model)
    if not REAL.is_dir():
        print("real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)", file=sys.stderr)
        return 2
    config = Config()
    pairs = load_pairs()
    shipped = Thresholds.of(config.similarity)
    judge_t = replace(shipped, judge=True)
    before, predicted, judged = predictions(pairs, config, [Thresholds(**PREVIOUS), shipped, judge_t])
    result = {"date": time.strftime("%Y-%m-%d"), "agreement": agreement(pairs), "parts": {}, "before": {}}
    lines = ["# Duplicates and overlaps against labelled pairs", "",
             f"{result['date']}. Command: `python benchmarks/similarity_quality.py`. {len(pairs)} pairs labelled by two",
             "annotators (benchmarks/labels/pairs/, docs/labelling.md); agreement before adjudication "
             f"{result['agreement']['agreement']:.0%}, Cohen's kappa {result['agreement']['kappa']:.2f}.",
             "The shipped model and thresholds relate each pair as `check` does (ST605, same need for another",
             "role, counts as an overlap). Thresholds are tuned on the tune pairs only",
             "(`python benchmarks/similarity_tune.py`); the held-out pairs are the test.", "",
             "### held-out pairs, before and after tuning, and the learned judge", "",
             "Before: the settings shipped before tuning (" + ", ".join(f"{k}={v}" for k, v in PREVIOUS.items()) + ").",
             "After: the shipped settings (" + ", ".join(f"{k}={getattr(shipped, k)}" for k in PREVIOUS) + ").",
             "Judge: the shipped settings with `judge = true` (the learned pair judge decides; whole, role and",
             "distinct still apply).", "",
             "| class | gold | before P | before R | after P | after R | judge P | judge R | target |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    held = [p for p in pairs if p["part"] == "held_out"]
    for cls, target in (("duplicate", "R >= 0.90 at P >= 0.90"), ("overlap", "R >= 0.80 at P >= 0.80")):
        b, a, j = prf(held, before, cls), prf(held, predicted, cls), prf(held, judged, cls)
        result["before"][cls] = b
        result.setdefault("judge", {})[cls] = j
        lines.append(f"| {cls} | {a['gold']} | {fmt(b['precision'])} | {fmt(b['recall'])} | {fmt(a['precision'])} | "
                     f"{fmt(a['recall'])} | {fmt(j['precision'])} | {fmt(j['recall'])} | {target} |")
    lines.append("")
    for part in ("held_out", "tune"):
        sub = [p for p in pairs if p["part"] == part]
        rows = {cls: prf(sub, predicted, cls) for cls in ("duplicate", "overlap")}
        for kind in ("paraphrase", "distractor"):
            kp = [p for p in sub if p["kind"] == kind]
            rows[f"{kind}s found as duplicate"] = {"gold": len(kp), "flagged": sum(predicted[p["id"]] == "duplicate" for p in kp)}
        result["parts"][part] = rows
        lines += [f"### {part.replace('_', '-')} pairs ({len(sub)})", "", "| class | gold | flagged | precision | recall | F1 |",
                  "|---|---:|---:|---:|---:|---:|"]
        for cls in ("duplicate", "overlap"):
            r = rows[cls]
            lines.append(f"| {cls} | {r['gold']} | {r['flagged']} | {fmt(r['precision'])} | {fmt(r['recall'])} | {fmt(r['f1'])} |")
        for cls in ("duplicate", "overlap"):
            r = rows[f"{cls} (judge)"] = prf(sub, judged, cls)
            lines.append(f"| {cls} (`judge = true`) | {r['gold']} | {r['flagged']} | {fmt(r['precision'])} | "
                         f"{fmt(r['recall'])} | {fmt(r['f1'])} |")
        for kind in ("paraphrase", "distractor"):
            kp = [p for p in sub if p["kind"] == kind]
            rows[f"{kind}s found as duplicate (judge)"] = {"gold": len(kp), "flagged": sum(judged[p["id"]] == "duplicate" for p in kp)}
        for kind in ("paraphrase", "distractor"):
            r = rows[f"{kind}s found as duplicate"]
            lines.append(f"| {kind}s called duplicate | {r['gold']} | {r['flagged']} | | | |")
            r = rows[f"{kind}s found as duplicate (judge)"]
            lines.append(f"| {kind}s called duplicate (`judge = true`) | {r['gold']} | {r['flagged']} | | | |")
        lines.append("")
    shares = share_flagged(config, pairs)
    result["flagged_share"] = shares
    previous = Config()
    names = {"whole": "whole_threshold", "duplicate": "duplicate_threshold", "overlap": "overlap_threshold",
             "same_goal": "same_goal_threshold", "role": "role_threshold", "ends": "ends_threshold",
             "distinct": "distinct_threshold", "judge": "judge"}
    for k, v in PREVIOUS.items():
        setattr(previous.similarity, names.get(k, k), v)
    shares_before = share_flagged(previous, pairs)
    result["flagged_share_before"] = shares_before
    judging = copy.deepcopy(config)
    judging.similarity.judge = True
    shares_judge = share_flagged(judging, pairs)
    result["flagged_share_judge"] = shares_judge
    lines += ["### On the real backlogs", "",
              f"Each of the 22 backlogs checked alone ({shares['stories']} stories), ST604 and ST605 turned on for the count.",
              "Precision: of the labelled pairs of two real stories that a finding relates, the share annotators",
              "gave its class (ST603: duplicate; ST604, ST605: overlap or duplicate).", "",
              "Merge-worthy: the share annotators labelled duplicate or overlap (either is merged).", "",
              "| rule | settings | stories flagged | share | labelled pairs among them | precision | merge-worthy |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for code in shares["codes"]:
        for name, sh in (("before", shares_before), ("after", shares), ("judge", shares_judge)):
            r = sh["codes"][code]
            lines.append(f"| {code}{'' if code == 'ST603' else ' (off by default)'} | {name} | {r['flagged']} | "
                         f"{r['share']:.1%} | {r['labelled_pairs']} | {fmt(r['precision'])} | {fmt(r['merge_worthy'])} |")
    lines += ["", "ST603 per story against the `unique` labels of benchmarks/labels/qus/ (every story labelled;",
              "a story is a defect when annotators found another story of its backlog asking for the same, exact",
              "copies included, which ST601 reports and ST603 does not). Tune and held-out backlogs as",
              "benchmarks/labels/qus/split.json.", "",
              "| backlogs | settings | stories | not unique (gold) | ST603 flagged | share | precision | recall |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for part in ("tune", "held_out"):
        for name, sh in (("before", shares_before), ("after", shares), ("judge", shares_judge)):
            r = sh["st603_against_unique"][part]
            lines.append(f"| {part.replace('_', '-')} | {name} | {r['stories']} | {r['gold']} ({r['gold_share']:.1%}) | "
                         f"{r['flagged']} | {r['share']:.1%} | {fmt(r['precision'])} | {fmt(r['recall'])} |")
    text = "\n".join(lines)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "similarity_quality.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "similarity_quality.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Tune the similarity thresholds on the *tune* part of the labelled pairs; never look at held-out.

The pairs (benchmarks/labels/pairs/pairs.csv, docs/labelling.md) carry a ``part`` column: tune or
held_out, by the backlog the real story belongs to. This script scores every tune pair once with the
shipped model, exactly as ``check`` does (whole, means, lexical, role, ends and the gap to the nearest
neighbour in the same workspace as benchmarks/similarity_quality.py builds), then searches a grid of
thresholds: first the duplicate rule (whole, near_best, role: best F1 of the duplicate class), then, with it
fixed, the means thresholds (best F1 of the overlap class, the duplicate F1 kept, ST605 counting as an overlap as annotators do).
Then the stand-out threshold (``distinct_threshold``, a z-score): it barely moves the pairs (each
paraphrase was scored in a workspace of all 22 backlogs), so it is read off the 15 tune backlogs, each
checked alone as ``check`` would: the share of stories ST603 flags and its per-story precision and
recall against the QUS ``unique`` labels (benchmarks/labels/qus/), for a few values (printed only;
the choice and its reason are in docs/similarity.md). The held-out figures come only from
benchmarks/similarity_quality.py.

    python benchmarks/similarity_tune.py            # prints the table
    python benchmarks/similarity_tune.py --write    # and writes docs/benchmarks/similarity_tuning.{json,md}
    python benchmarks/similarity_tune.py --quantize int8   # the same with the int8 model (prints only)
    python benchmarks/similarity_tune.py --write --second-judge DIR   # also measure a second model (below)

Then the learned pair judge (``judge = true``, benchmarks/similarity_judge.py fits it on the same tune
labels): its out-of-fold figures on the tune rows. With ``--second-judge DIR`` (a local
sentence-transformers directory, e.g. all-mpnet-base-v2) also that model's cosines as two more judge
features: its cost and its figures, tune out of fold and held-out once.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from similarity_quality import PREDICTED, REAL, fmt, load_pairs, share_flagged, workspace_of  # noqa: E402
from storytransformer.config import Config  # noqa: E402
from storytransformer.similarity.classify import Thresholds, classify  # noqa: E402
from storytransformer.similarity.index import SimilarityIndex  # noqa: E402

DUPLICATE_GRID = {
    "whole": [round(0.70 + 0.01 * i, 2) for i in range(21)],
    "near_best": [0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 1.0],
    "role": [0.3, 0.5, 0.6, 0.7],
    "duplicate": [round(0.3 + 0.05 * i, 2) for i in range(9)],
    "lexical_weight": [0.0, 0.3, 0.5],
}
DISTINCT_VALUES = [0.0, 1.0, 1.5, 2.0, 2.25, 2.5, 3.0, 3.5, 4.0]
OVERLAP_GRID = {
    "overlap": [round(0.3 + 0.05 * i, 2) for i in range(14)],
    "same_goal": [round(0.5 + 0.05 * i, 2) for i in range(10)] + [1.01],
}


def f1(scored, t: Thresholds, cls: str) -> tuple[float, float, float]:
    tp = fp = fn = 0
    for label, s in scored:
        pred = PREDICTED[classify(s, t)]
        tp += label == cls and pred == cls
        fp += label != cls and pred == cls
        fn += label == cls and pred != cls
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def search(scored, base: Thresholds, grid: dict, cls: str, keep: tuple[str, float] | None = None,
           tie_overlap: bool = False) -> tuple[Thresholds, tuple]:
    """The grid point with the best F1 for ``cls`` (and, with ``keep``, at least that F1 for that
    class); ties: higher precision, then the earlier point."""
    best_key, best_t = None, base
    for values in itertools.product(*grid.values()):
        t = replace(base, **dict(zip(grid, values)))
        if tie_overlap:
            t = replace(t, overlap=t.duplicate)
        if not 0 < t.overlap <= t.duplicate:  # the configuration requires it (storytransformer/config.py)
            continue
        if keep and f1(scored, t, keep[0])[0] < keep[1] - 1e-9:
            continue
        score = f1(scored, t, cls)
        key = (round(score[0], 4), round(score[1], 4))
        if best_key is None or key > best_key:
            best_key, best_t = key, t
    return best_t, f1(scored, best_t, cls)


def judge_section(second_judge: str | None) -> list[str]:
    """The learned pair judge's fit on the tune labels and, optionally, a second model measured as two
    more of its features (benchmarks/similarity_judge.py)."""
    import similarity_judge as J

    pairs, scores, texts = J.scored_pairs()
    x = J.features(scores)
    b_scores, by, b_texts = J.backlog_candidates("tune")
    bx = J.features(b_scores)
    model = J.fit(pairs, x, bx, by)
    lines = ["## The learned pair judge (`judge = true`)", "",
             f"`python benchmarks/similarity_judge.py --write` fits it on the {sum(p['part'] == 'tune' for p in pairs)} "
             f"tune pairs and the {len(by)} candidate pairs of the 15 tune backlogs ({int(by.sum())} named in "
             "`unique_with` by the story annotators). Out-of-fold figures (5 folds, 5 shuffles) at the chosen cut:", "",
             "| model | cut | all rows P | R | F1 | tune pairs P | R | backlog candidates P | R |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += J.cv_rows(model)
    lines.append("")
    if second_judge:
        lines += ["### A second model as two more judge features", ""]
        lines += J.second_judge(second_judge, pairs, texts, x, (bx, by, b_texts)) + [""]
    elif J.SECOND.is_file():
        # measured apart (minutes on two cores): its last measurement, as benchmarks/similarity_judge.py wrote it
        body = J.SECOND.read_text("utf-8").splitlines()[2:]
        lines += ["### A second model as two more judge features (last measured apart)", "",
                  "Measured by `benchmarks/similarity_judge.py --second-judge DIR`, which, unlike the tables above, "
                  "also reads the held-out rows once (the decision to ship it or not rests on them).", "", *body]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write docs/benchmarks/similarity_tuning.{json,md}")
    ap.add_argument("--quantize", default="none", choices=["none", "int8"], help="score with the int8-quantized model")
    ap.add_argument("--second-judge", metavar="DIR", help="a local sentence-transformers model to measure as a second judge")
    args = ap.parse_args(argv)
    if not REAL.is_dir():
        print("real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    config = Config()
    config.similarity.quantize = args.quantize
    pairs = load_pairs()
    ws, keys = workspace_of(pairs, config)
    index = SimilarityIndex.build(ws.stories(), config.similarity)
    tune = [p for p in pairs if p["part"] == "tune"]
    index.thresholds = replace(index.thresholds, whole=-1.0)  # every pair's gap, whatever whole the grid tries
    scored = [(p["label"], index.pair_scores(keys[p["a"]], keys[p["b"] or p["id"]])) for p in tune]
    shipped = Thresholds.of(config.similarity)
    # The duplicate class depends only on the first grid's settings; overlap = duplicate keeps it valid.
    dup_t, dup = search(scored, shipped, DUPLICATE_GRID, "duplicate", tie_overlap=True)
    best_t, ov = search(scored, dup_t, OVERLAP_GRID, "overlap", keep=("duplicate", dup[0]))
    rows = {"shipped": (shipped, f1(scored, shipped, "duplicate"), f1(scored, shipped, "overlap")),
            "grid best": (best_t, f1(scored, best_t, "duplicate"), ov)}
    lines = ["# Similarity thresholds tuned on the tune pairs" + (" (int8 model)" if args.quantize != "none" else ""), "",
             f"{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/similarity_tune.py --write`. "
             f"{len(tune)} tune pairs of benchmarks/labels/pairs/pairs.csv; held-out pairs are not read here "
             "(their figures: docs/benchmarks/similarity_quality.md).", "",
             "| settings | duplicate P | duplicate R | duplicate F1 | overlap P | overlap R | overlap F1 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, (_, d, o) in rows.items():
        lines.append(f"| {name} | {d[1]:.2f} | {d[2]:.2f} | {d[0]:.2f} | {o[1]:.2f} | {o[2]:.2f} | {o[0]:.2f} |")
    lines += ["", "Grid best: " + ", ".join(f"{k}={v}" for k, v in asdict(best_t).items()),
              "", "Shipped: " + ", ".join(f"{k}={v}" for k, v in asdict(shipped).items()), ""]
    lines += ["Stand-out threshold on the 15 tune backlogs (ST603 per story against the QUS unique labels):", "",
              "| distinct_threshold | flagged | share | precision | recall |", "|---:|---:|---:|---:|---:|"]
    for distinct in DISTINCT_VALUES:
        cfg = Config()
        cfg.similarity.quantize = args.quantize
        cfg.similarity.distinct_threshold = distinct
        r = share_flagged(cfg, pairs, parts=("tune",))["st603_against_unique"]["tune"]
        lines.append(f"| {distinct} | {r['flagged']} | {r['share']:.1%} | {fmt(r['precision'])} | {fmt(r['recall'])} |")
    lines.append("")
    if args.quantize == "none":
        lines += judge_section(args.second_judge)
    text = "\n".join(lines)
    print(text)
    if args.write and args.quantize == "none":
        out = ROOT / "docs" / "benchmarks"
        report = {"tune_pairs": len(tune), "grid": {"duplicate": DUPLICATE_GRID, "overlap": OVERLAP_GRID},
                  "shipped": asdict(shipped), "grid_best": asdict(best_t),
                  "figures": {k: {"duplicate": d, "overlap": o} for k, (_, d, o) in rows.items()},
                  "seconds": round(time.perf_counter() - t0, 1)}
        (out / "similarity_tuning.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
        (out / "similarity_tuning.md").write_text(text + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Tune and check the similarity thresholds on hand-labelled pairs from the real backlogs.

Reads tests/similarity/labelled_pairs.tsv (pairs referenced by backlog file and
line), scores every pair with the real model, searches a coarse grid of
thresholds for the best macro F1 over duplicate / overlap / same-goal, and
reports precision and recall per class for the shipped defaults and for the
grid's best. Also counts the pairs each class finds over all 22 backlogs.

    python benchmarks/similarity_tune.py            # prints tables
    python benchmarks/similarity_tune.py --write    # and writes docs/benchmarks/similarity_tuning.{json,md}
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT.parent / "shared" / "data" / "backlogs" / "dalpiaz"
LABELS = ROOT / "tests" / "similarity" / "labelled_pairs.tsv"
CLASSES = ("duplicate", "overlap", "same-goal")

from storytransformer.config import SimilarityConfig  # noqa: E402
from storytransformer.similarity.classify import Thresholds, classify  # noqa: E402


def read_labels(path: Path = LABELS) -> list[tuple[str, str, int, str, int, float]]:
    """(label, file_a, line_a, file_b, line_b, weight) rows; lines are 1-based."""
    rows = []
    for line in path.read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("label\t"):
            continue
        label, fa, la, fb, lb, w = line.split("\t")
        rows.append((label, fa, int(la), fb, int(lb), float(w)))
    return rows


def load_index(real: Path = REAL, quantize: str = "none"):
    from storytransformer.config import Config
    from storytransformer.similarity.index import SimilarityIndex
    from storytransformer.workspace import Workspace

    ws = Workspace.from_paths([str(real)], Config())
    index = SimilarityIndex.build(ws.stories(), SimilarityConfig(quantize=quantize))
    index.save_cache()
    by_line = {(Path(s.file).name, s.line + 1): s for s in ws.stories()}
    return index, by_line


def metrics(labels: list[str], predicted: list[str], weights: list[float] | None = None) -> dict:
    """Per-class precision / recall, each pair counted with its stratum weight (estimates for the
    whole candidate population); ``predicted`` / ``labelled`` are the unweighted sample counts."""
    w = weights or [1.0] * len(labels)
    out = {}

    def pr(is_lab, is_pred):
        tp = sum(x for x, l, p in zip(w, labels, predicted) if is_lab(l) and is_pred(p))
        npred = sum(x for x, p in zip(w, predicted) if is_pred(p))
        nlab = sum(x for x, l in zip(w, labels) if is_lab(l))
        prec = tp / npred if npred else 0.0
        rec = tp / nlab if nlab else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f05 = 1.25 * prec * rec / (0.25 * prec + rec) if prec + rec else 0.0
        return {"precision": round(prec, 3), "recall": round(rec, 3), "f1": round(f1, 3), "f0.5": round(f05, 3),
                "predicted": sum(1 for p in predicted if is_pred(p)), "labelled": sum(1 for l in labels if is_lab(l))}

    for c in CLASSES:
        out[c] = pr(lambda l, c=c: l == c, lambda p, c=c: p == c)
    out["related (any class)"] = pr(lambda l: l != "unrelated", lambda p: p != "unrelated")
    out["accuracy"] = round(sum(x for x, l, p in zip(w, labels, predicted) if l == p) / sum(w), 3)
    out["macro_f1"] = round(sum(out[c]["f1"] for c in CLASSES) / len(CLASSES), 3)
    out["macro_f0.5"] = round(sum(out[c]["f0.5"] for c in CLASSES) / len(CLASSES), 3)
    return out


def predict(scores, t: Thresholds) -> list[str]:
    return [classify(s, t).value for s in scores]


GRID = {
    "duplicate": [0.85, 0.875, 0.9, 0.925, 0.95],
    "overlap": [0.6, 0.65, 0.7, 0.75, 0.8],
    "same_goal": [0.65, 0.7, 0.75, 0.8, 0.85],
    "role": [0.6, 0.7, 0.8],
    "ends": [0.5, 0.6, 0.7, 0.8],
    "lexical_weight": [0.0, 0.2, 0.3, 0.4],
}


def grid_search(scores, labels, weights) -> tuple[Thresholds, dict]:
    """The grid point with the best weighted macro F0.5 (ties: accuracy).

    F0.5 counts precision twice as much as recall: a linter that cries wolf gets turned off."""
    best, best_t = None, None
    for values in itertools.product(*GRID.values()):
        t = Thresholds(**dict(zip(GRID, values)))
        if t.overlap > t.duplicate:
            continue
        m = metrics(labels, predict(scores, t), weights)
        key = (m["macro_f0.5"], m["accuracy"])
        if best is None or key > best:
            best, best_t = key, t
    return best_t, metrics(labels, predict(scores, best_t), weights)


def class_counts(index) -> dict:
    index._pairs = None
    pairs = Counter(p.relation.value for p in index.pairs())
    stories = Counter(p.relation.value for _, _, p in index.related())
    return {"text pairs": dict(pairs), "story pairs": dict(stories)}


def table(title: str, m: dict) -> str:
    lines = [f"### {title}", "", "| class | precision | recall | predicted | labelled |", "|---|---|---|---|---|"]
    for c in (*CLASSES, "related (any class)"):
        r = m[c]
        lines.append(f"| {c} | {r['precision']:.2f} | {r['recall']:.2f} | {r['predicted']} | {r['labelled']} |")
    lines.append(f"\naccuracy {m['accuracy']:.2f}, macro F1 {m['macro_f1']:.2f}, macro F0.5 {m['macro_f0.5']:.2f}\n")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write docs/benchmarks/similarity_tuning.{json,md}")
    ap.add_argument("--quantize", default="none", choices=["none", "int8"], help="score with the int8-quantized model")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not REAL.is_dir():
        print(f"real backlogs not found at {REAL}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    index, by_line = load_index(quantize=args.quantize)
    rows = read_labels()
    labels, scores, weights = [], [], []
    for label, fa, la, fb, lb, w in rows:
        a, b = by_line[(fa, la)], by_line[(fb, lb)]
        labels.append(label)
        weights.append(w)
        scores.append(index.pair_scores((a.file, a.id), (b.file, b.id)))
    defaults = Thresholds.of(SimilarityConfig())
    m_default = metrics(labels, predict(scores, defaults), weights)
    best_t, m_best = grid_search(scores, labels, weights)
    index.thresholds = defaults
    counts = class_counts(index)
    report = {
        "quantize": args.quantize, "labelled_pairs": len(rows), "label_counts": dict(Counter(labels)),
        "defaults": asdict(defaults), "defaults_metrics": m_default,
        "grid": GRID, "grid_best": asdict(best_t), "grid_best_metrics": m_best,
        "pairs_found_with_defaults_on_22_backlogs": counts,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    md = "\n".join([
        "# Similarity thresholds on labelled pairs from the 22 real backlogs",
        "",
        f"{len(rows)} hand-labelled pairs ({', '.join(f'{k}: {v}' for k, v in sorted(Counter(labels).items()))}), "
        "generated by `benchmarks/similarity_tune.py`. Precision and recall weight each pair by the inverse "
        "sampling rate of its score stratum (see the labelled-pairs file), so they estimate the rates over all "
        "candidate pairs of the 22 backlogs; `predicted` and `labelled` are sample counts.",
        "",
        "Shipped defaults: " + ", ".join(f"{k}={v}" for k, v in asdict(defaults).items()),
        "",
        table("Shipped defaults", m_default),
        "Best point of the grid: " + ", ".join(f"{k}={v}" for k, v in asdict(best_t).items()),
        "",
        table("Grid best (in-sample, optimistic)", m_best),
        "### Pairs found over the 22 backlogs with the defaults",
        "",
        "| class | distinct-text pairs | story pairs |", "|---|---|---|",
        *[f"| {c} | {counts['text pairs'].get(c, 0)} | {counts['story pairs'].get(c, 0)} |" for c in CLASSES],
        "",
    ])
    print(md)
    if args.write and args.quantize == "none":
        out = ROOT / "docs" / "benchmarks"
        out.mkdir(parents=True, exist_ok=True)
        (out / "similarity_tuning.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
        (out / "similarity_tuning.md").write_text(md, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

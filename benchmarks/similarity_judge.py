"""Fit the learned pair judge on the *tune* labels; write its coefficients; optionally measure a second model.

Two kinds of tune labels, both from the tune backlogs of benchmarks/labels/qus/split.json:
- the tune pairs of benchmarks/labels/pairs/pairs.csv, each scored once as the index scores a
  candidate pair (the workspace of benchmarks/similarity_quality.py, every pair's gap to the nearest
  neighbours known);
- the candidate pairs ``check`` considers in each tune backlog checked alone (whole cosine at the
  ``whole`` threshold), positive when the story annotators named the other story in ``unique_with``
  (benchmarks/labels/qus/adjudicated/): the pairs on which ST603 is judged per story.
Each pair becomes the judge's feature row (storytransformer/similarity/pair_judge.py) and two
logistic regressions are fitted: duplicate (a pair labelled duplicate, or a backlog pair in
``unique_with``) against the rest, and merge-worthy (duplicate or overlap, or in ``unique_with``)
against the rest. The written paraphrases alone teach the opposite of the backlogs (another verb
means a restatement, the same verb a template sibling), so both kinds are fitted together. The
standardisation is folded into the coefficients, so the shipped judge is one dot product. The
probability cuts are chosen on out-of-fold predictions of the tune rows (5 folds, 5 shuffles): the
best F1 of each class. Held-out labels are never read here (benchmarks/similarity_quality.py).

    python benchmarks/similarity_judge.py            # prints the fit and its cross-validated figures
    python benchmarks/similarity_judge.py --write    # and writes storytransformer/similarity/judge_weights.py
    python benchmarks/similarity_judge.py --second-judge DIR --write   # also the set with a second
        # sentence-transformers model's cosines (whole story and means, through the index and its embedding
        # cache) as two more features, fitted and cut the same way: what similarity.second_model uses
    python benchmarks/similarity_judge.py --second-judge DIR --measure-second   # and the model's cost and the
        # judge's held-out figures with and without it (docs/benchmarks/similarity_second_judge.md)
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from similarity_quality import REAL, load_pairs, workspace_of  # noqa: E402
from storytransformer.config import Config  # noqa: E402
from storytransformer.similarity.compared_parts import StoryTexts  # noqa: E402
from storytransformer.similarity.index import SimilarityIndex  # noqa: E402
from storytransformer.similarity.pair_judge import FEATURES, FEATURES_SECOND, feature_matrix  # noqa: E402

WEIGHTS = ROOT / "storytransformer" / "similarity" / "judge_weights.py"
SECOND = ROOT / "docs" / "benchmarks" / "similarity_second_judge.md"  # written by --second-judge
CUTS = [round(0.05 * i, 2) for i in range(2, 19)]
C = 1.0  # inverse regularisation strength of both regressions
MERGE_WORTHY = ("duplicate", "overlap")


def scored_pairs(config: Config | None = None, second_model: str = ""):
    """(pairs, PairScores per pair, StoryTexts of both stories per pair) for every labelled pair
    (with the second model's cosines, through the index, when ``second_model`` is given)."""
    config = config or Config()
    config.similarity.judge = True  # the index computes the judge's word-level features
    pairs = load_pairs()
    ws, keys = workspace_of(pairs, config)
    index = SimilarityIndex.build(ws.stories(), config.similarity)
    index.second = second_of(second_model)
    index.thresholds = replace(index.thresholds, whole=-1.0)  # every pair's gap, whatever its cosine
    if index.second is not None:  # one batched encode of every pair's texts, then each pair reads the cache
        keys_of = [(keys[p["a"]], keys[p["b"] or p["id"]]) for p in pairs]
        both = [StoryTexts.of(index.story(k)) for pair in keys_of for k in pair]
        index.second.encode([t.whole for t in both] + [t.means_or_whole for t in both])
        index.save_cache()
    scores, texts = [], []
    for p in pairs:
        ka, kb = keys[p["a"]], keys[p["b"] or p["id"]]
        scores.append(index.pair_scores(ka, kb))
        texts.append((StoryTexts.of(index.story(ka)), StoryTexts.of(index.story(kb))))
    return pairs, scores, texts


def backlog_candidates(part: str = "tune", second_model: str = "") -> tuple[list, np.ndarray, list]:
    """(PairScores, positive, StoryTexts of both stories) of every candidate pair of each backlog of ``part``
    checked alone; positive: the story annotators list one story in the other's ``unique_with``."""
    import csv
    import json

    from similarity_quality import QUS
    from storytransformer.workspace import Workspace

    split = json.loads((QUS / "split.json").read_text("utf-8"))
    scores, positive, texts = [], [], []
    for name in split[part]:
        unique_with: dict[int, set[int]] = {}
        with (QUS / "adjudicated" / f"{name}.csv").open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                unique_with[int(row["line"])] = {int(x) for x in row["unique_with"].split(";") if x.strip()}
        config = Config()
        config.similarity.judge = True
        ws = Workspace.from_paths([REAL / f"{name}.txt"], config)
        index = SimilarityIndex.build(ws.stories(), config.similarity)
        index.pairs()  # the candidates (the second model decides none of them here)
        index.second = second_of(second_model)
        a, b = index._cand[0], index._cand[1]
        if not len(a):
            continue
        for x, y, sc in zip(a.tolist(), b.tolist(), index._scores(a, b)):
            la = [s.range.start.line + 1 for s in index.members(x)]
            lb = [s.range.start.line + 1 for s in index.members(y)]
            positive.append(any(j in unique_with.get(i, ()) or i in unique_with.get(j, ()) for i in la for j in lb))
            scores.append(sc)
            texts.append((StoryTexts.of(index.members(x)[0]), StoryTexts.of(index.members(y)[0])))
        index.save_cache()
    return scores, np.array(positive, bool), texts


def second_of(second_model: str):
    """The second model's embedder (cached like the product's), or None: attached to an index after its
    candidates are found, so its pair scores carry the second cosines before any coefficients exist."""
    if not second_model:
        return None
    from storytransformer.similarity.embedder import shared_embedder
    from storytransformer.similarity.second_judge import second_model_dir

    return shared_embedder(str(second_model_dir(second_model)))


def features(scores, second: bool = False) -> np.ndarray:
    """The judge's feature rows for a list of PairScores (pair_judge.feature_matrix); with ``second``,
    the rows of FEATURES_SECOND (the second model's cosines, which the scores must carry)."""
    nan = float("nan")
    return feature_matrix(np.array([s.whole for s in scores]), np.array([s.means for s in scores]),
                          np.array([s.means_lexical for s in scores]),
                          np.array([nan if s.role is None else s.role for s in scores]),
                          np.array([nan if s.ends is None else s.ends for s in scores]),
                          np.array([nan if s.gap is None else s.gap for s in scores]),
                          np.array([float(s.contained) for s in scores]),
                          np.array([s.words or (0.0, 0.0, 0.0, 0.0) for s in scores], np.float64),
                          np.array([s.second for s in scores], np.float64).reshape(-1, 2) if second else None)


# Features whose coefficient may not be negative: more similar never makes a pair less of a duplicate.
# Unconstrained, the fit learns the make-up of the labelled sets instead (written restatements use other
# words, template siblings share them) and calls two near-identical stories unrelated.
MONOTONE = ("whole", "means", "means_lexical", "role", "ends", "gap", "contained", "object_overlap",
            "length_ratio", "coverage", "second_whole", "second_means")


def fit_one(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """(intercept, coefficients) on the raw features: an L2-regularised logistic regression on
    standardised features (sklearn's objective, C), the :data:`MONOTONE` coefficients kept >= 0,
    solved with L-BFGS-B, then unfolded."""
    from scipy.optimize import minimize

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    sign = np.where(y, 1.0, -1.0)

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        m = sign * (z @ w + b)
        value = np.logaddexp(0.0, -m).sum() * C + 0.5 * w @ w
        g = -sign * C / (1.0 + np.exp(m))
        return value, np.append(z.T @ g + w, g.sum())

    bounds = [(0.0, None) if f in MONOTONE else (None, None) for f in FEATURES_SECOND[: x.shape[1]]]
    bounds += [(None, None)] * (x.shape[1] - len(bounds) + 1)
    res = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 10000, "ftol": 1e-14, "gtol": 1e-10})
    coef = res.x[:-1] / scale
    return float(res.x[-1] - (coef * mean).sum()), coef


def out_of_fold(x: np.ndarray, y: np.ndarray, shuffles: int = 5) -> np.ndarray:
    """Mean out-of-fold probability per row over ``shuffles`` stratified 5-fold splits."""
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(len(y))
    for seed in range(shuffles):
        for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
            b, w = fit_one(x[train], y[train])
            out[test] += 1 / (1 + np.exp(-(x[test] @ w + b)))
    return out / shuffles


def best_cut(p: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """(cut, F1, precision, recall) of the cut with the best F1 (ties: the higher cut)."""
    best = None
    for cut in CUTS:
        pred = p >= cut
        tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        key = (round(f1, 6), cut)
        if best is None or key > best[0]:
            best = (key, (cut, f1, tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0))
    return best[1]


def fit(pairs, x: np.ndarray, backlog_x: np.ndarray | None = None, backlog_y: np.ndarray | None = None) -> dict:
    """The judge fitted on the tune rows of ``x`` (with the backlog candidates, when given):
    intercepts, coefficients and cuts of both models, with the out-of-fold figures the cuts were
    chosen on (all rows, and the pairs and backlog candidates apart)."""
    tune = np.array([p["part"] == "tune" for p in pairs])
    labels = np.array([p["label"] for p in pairs])
    out = {}
    for name, classes in (("duplicate", ("duplicate",)), ("merge", MERGE_WORTHY)):
        rows, y = x[tune], np.isin(labels[tune], classes)
        if backlog_x is not None:
            rows, y = np.vstack([rows, backlog_x]), np.concatenate([y, backlog_y])
        b, w = fit_one(rows, y)
        p_oof = out_of_fold(rows, y)
        cut, f1, p, r = best_cut(p_oof, y)
        n = int(tune.sum())
        parts = {"pairs": prf(p_oof[:n] >= cut, y[:n]), "backlogs": prf(p_oof[n:] >= cut, y[n:])}
        out[name] = {"intercept": b, "coef": w, "cut": cut, "cv": {"f1": f1, "precision": p, "recall": r, **parts}}
    return out


def prf(pred: np.ndarray, y: np.ndarray) -> dict:
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    return {"precision": tp / (tp + fp) if tp + fp else 0.0, "recall": tp / (tp + fn) if tp + fn else 0.0,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0}


def write_weights(model: dict, second: dict | None = None) -> None:
    """Write the judge's coefficients; ``second``: the set with the second model's cosines (None: keep
    the set already written, if any)."""
    def nums(v):
        return "(" + ", ".join(f"{float(x):.10g}" for x in v) + ",)"

    if second is not None:
        second_text = f"""
# With similarity.second_model (`--second-judge DIR --write`): the second model's two cosines as two more features.
FEATURES_SECOND = {FEATURES_SECOND!r}
INTERCEPT_DUPLICATE_SECOND = {second["duplicate"]["intercept"]:.10g}
COEF_DUPLICATE_SECOND = {nums(second["duplicate"]["coef"])}
INTERCEPT_MERGE_SECOND = {second["merge"]["intercept"]:.10g}
COEF_MERGE_SECOND = {nums(second["merge"]["coef"])}
DUPLICATE_CUT_SECOND = {second["duplicate"]["cut"]}
MERGE_CUT_SECOND = {second["merge"]["cut"]}
"""
    else:
        old = WEIGHTS.read_text("utf-8")
        at = old.find("\n# With similarity.second_model")
        second_text = old[at:] if at >= 0 else ""

    text = f'''"""Coefficients of the learned pair judge (storytransformer/similarity/pair_judge.py).

Written by `python benchmarks/similarity_judge.py --write` from the tune pairs of
benchmarks/labels/pairs/pairs.csv; tests/similarity/test_pair_judge.py refits them and checks they
are reproduced. Do not edit by hand.
"""

FEATURES = {FEATURES!r}
INTERCEPT_DUPLICATE = {model["duplicate"]["intercept"]:.10g}
COEF_DUPLICATE = {nums(model["duplicate"]["coef"])}
INTERCEPT_MERGE = {model["merge"]["intercept"]:.10g}
COEF_MERGE = {nums(model["merge"]["coef"])}
DUPLICATE_CUT = {model["duplicate"]["cut"]}
MERGE_CUT = {model["merge"]["cut"]}
''' + second_text
    WEIGHTS.write_text(text, "utf-8")


def second_judge(model_dir: str, pairs, texts, x: np.ndarray, backlog) -> list[str]:
    """Cosines of a second model as two more features: tune cross-validation with and without them,
    the held-out figures of both (read once), and the model's cost."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = 128
    load_s = time.perf_counter() - t0
    size_mb = sum(f.stat().st_size for f in Path(model_dir).rglob("*") if f.is_file()) / 2**20
    bx, by, btexts = backlog
    distinct = sorted({t for a, b in [*texts, *btexts] for s in (a, b) for t in (s.whole, s.means_or_whole)})
    t0 = time.perf_counter()
    vectors = dict(zip(distinct, model.encode(distinct, batch_size=32, normalize_embeddings=True)))
    per_text_ms = (time.perf_counter() - t0) / len(distinct) * 1000
    t0 = time.perf_counter()
    for a, b in texts[:50]:  # one pair at a time, as a judge of a few boundary pairs would run
        model.encode([a.whole, b.whole, a.means_or_whole, b.means_or_whole], normalize_embeddings=True)
    per_pair_ms = (time.perf_counter() - t0) / 50 * 1000
    def cosines(rows):
        return np.array([[vectors[a.whole] @ vectors[b.whole], vectors[a.means_or_whole] @ vectors[b.means_or_whole]]
                         for a, b in rows], np.float64).reshape(-1, 2)

    extra, bextra = cosines(texts), cosines(btexts)
    lines = [f"Second judge `{Path(model_dir).name}`: {size_mb:.0f} MB on disk, load {load_s:.1f} s, "
             f"{per_text_ms:.0f} ms per text in batches, {per_pair_ms:.0f} ms per pair alone (both stories' "
             f"whole and means), {torch.get_num_threads()} threads.", "",
             "| features | split | duplicate P | duplicate R | duplicate F1 | merge-worthy P | merge-worthy R | merge-worthy F1 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    held_x, held_y, held_texts = backlog_candidates("held_out")
    held_extra = cosines_of(model, held_texts)
    labels = np.array([p["label"] for p in pairs])
    held = np.array([p["part"] == "held_out" for p in pairs])
    held_bx = features(held_x)
    for name, feats, bfeats, hbfeats in (("judge", x, bx, held_bx),
                                         ("judge + second model", np.hstack([x, extra]), np.hstack([bx, bextra]),
                                          np.hstack([held_bx, held_extra]))):
        fitted = fit(pairs, feats, bfeats, by)
        for split in ("pairs", "backlogs"):
            cv = [fitted[k]["cv"][split] for k in ("duplicate", "merge")]
            lines.append(f"| {name} | tune {split} (out of fold) | " + " | ".join(
                f"{c['precision']:.2f} | {c['recall']:.2f} | {c['f1']:.2f}" for c in cv) + " |")
        for split, rows, ys in (("pairs", feats[held], None), ("backlogs", hbfeats, held_y)):
            cells = []
            for key, classes in (("duplicate", ("duplicate",)), ("merge", MERGE_WORTHY)):
                m = fitted[key]
                pred = 1 / (1 + np.exp(-(rows @ m["coef"] + m["intercept"]))) >= m["cut"]
                y = np.isin(labels[held], classes) if ys is None else ys
                c = prf(pred, y)
                cells.append(f"{c['precision']:.2f} | {c['recall']:.2f} | {c['f1']:.2f}")
            lines.append(f"| {name} | held-out {split} | " + " | ".join(cells) + " |")
    return lines


def cosines_of(model, rows) -> np.ndarray:
    """(whole, means) cosines of a sentence-transformers model for pairs of StoryTexts."""
    out = []
    for a, b in rows:
        v = model.encode([a.whole, b.whole, a.means_or_whole, b.means_or_whole], normalize_embeddings=True)
        out.append([float(v[0] @ v[1]), float(v[2] @ v[3])])
    return np.array(out, np.float64).reshape(-1, 2)


def cv_rows(model: dict) -> list[str]:
    """The fitted judge's out-of-fold rows (cut; all rows, tune pairs, backlog candidates: P, R), one per model."""
    rows = []
    for name in ("duplicate", "merge"):
        m, cv = model[name], model[name]["cv"]
        rows.append(f"| {name} | {m['cut']} | {cv['precision']:.2f} | {cv['recall']:.2f} | {cv['f1']:.2f} | "
                    f"{cv['pairs']['precision']:.2f} | {cv['pairs']['recall']:.2f} | "
                    f"{cv['backlogs']['precision']:.2f} | {cv['backlogs']['recall']:.2f} |")
    return rows

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write storytransformer/similarity/judge_weights.py")
    ap.add_argument("--second-judge", metavar="DIR", help="a local sentence-transformers model directory: fit the judge "
                    "with its cosines too (written with --write, used when similarity.second_model is set)")
    ap.add_argument("--measure-second", action="store_true", help="with --second-judge: also the model's cost and "
                    "held-out judge figures (docs/benchmarks/similarity_second_judge.md)")
    args = ap.parse_args(argv)
    if not REAL.is_dir():
        print("real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)", file=sys.stderr)
        return 2
    pairs, scores, texts = scored_pairs()
    x = features(scores)
    b_scores, by, b_texts = backlog_candidates("tune")
    bx = features(b_scores)
    model = fit(pairs, x, bx, by)
    lines = [f"Judge fitted on {sum(p['part'] == 'tune' for p in pairs)} tune pairs and {len(by)} candidate pairs of the "
             f"tune backlogs ({int(by.sum())} in `unique_with`), C={C}.", "",
             "| model | cut | out-of-fold P | R | F1 | pairs P | R | backlog candidates P | R |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += cv_rows(model)
    lines += ["", "| feature | duplicate coef | merge coef | coef x std (duplicate) |", "|---|---:|---:|---:|"]
    std = np.vstack([x[[p["part"] == "tune" for p in pairs]], bx]).std(axis=0)
    for i, f in enumerate(FEATURES):
        lines.append(f"| {f} | {model['duplicate']['coef'][i]:.3f} | {model['merge']['coef'][i]:.3f} | "
                     f"{model['duplicate']['coef'][i] * std[i]:.2f} |")
    second_model = None
    if args.second_judge:
        # The set the product uses: the second model's cosines through the index (and its embedding cache).
        _, s_scores, _ = scored_pairs(second_model=args.second_judge)
        sb_scores, sby, _ = backlog_candidates("tune", second_model=args.second_judge)
        second_model = fit(pairs, features(s_scores, True), features(sb_scores, True), sby)
        lines += ["", "With the second model's cosines (second_whole, second_means):", "",
                  "| model | cut | out-of-fold P | R | F1 |", "|---|---:|---:|---:|---:|"]
        for name in ("duplicate", "merge"):
            m, cv = second_model[name], second_model[name]["cv"]
            lines.append(f"| {name} | {m['cut']} | {cv['precision']:.2f} | {cv['recall']:.2f} | {cv['f1']:.2f} |")
    if args.second_judge and args.measure_second:
        measured = second_judge(args.second_judge, pairs, texts, x, (bx, by, b_texts))
        lines += [""] + measured
        SECOND.write_text("\n".join([
            "# A second embedding model as two more features of the pair judge", "",
            f"{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/similarity_judge.py --second-judge DIR`. Tune rows "
            "out of fold (the judge's own fit and cut choice), held-out pairs and held-out backlogs' candidates read "
            "once. Cost measured on the threads given to torch (2, the target machine).", "", *measured, ""]), "utf-8")
    print("\n".join(lines))
    if args.write:
        write_weights(model, second_model)
        print(f"wrote {WEIGHTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

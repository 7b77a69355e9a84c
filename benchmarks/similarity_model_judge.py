"""The language model as the second judge of duplicate pairs (ST606 beside ST603), on the labelled pairs.

``check --model-checks`` asks the configured model about the embedding index's near pairs
(storytransformer/similarity/near_pairs.py: each story's nearest neighbours at a whole cosine of 0.6 or
more) whether the two ask for the same functionality. A pair the index does not call a duplicate becomes
one (ST606) at P(yes) >= ``add``; a pair it does call one (ST603) stays one only at P(yes) >= ``keep``
(engine/judge.py, ``TUNED``); a pair answered within ``band`` of its cut is asked again with its stories the
other way round and the two answers averaged. This script replays that decision on every labelled pair from
the P(yes) that ``similarity_lm_judge.py --questions redundant`` recorded for it in each order (the product
reads the story earlier in the workspace first), chooses the two cuts on the tune pairs (best duplicate F1;
ties: the middle of the plateau), and reports the tune and held-out figures at the chosen and at the shipped
cuts beside the index alone and one order only. Writes docs/benchmarks/similarity_model_judge.md|json.

    python benchmarks/similarity_lm_judge.py --model FILE.gguf --questions redundant --name NAME   # P(yes), slow
    python benchmarks/similarity_lm_judge.py --model FILE.gguf --questions redundant --swapped \
        --min-whole 0.59 --name NAME-swapped                                                        # the other order
    python benchmarks/similarity_model_judge.py --scores docs/benchmarks/NAME.json \
        --swapped-scores docs/benchmarks/NAME-swapped.json                                           # this, seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from similarity_quality import REAL, fmt, load_pairs, predictions, workspace_of  # noqa: E402
from storytransformer.config import Config  # noqa: E402
from storytransformer.engine.judge import TUNED  # noqa: E402
from storytransformer.similarity.classify import Thresholds  # noqa: E402
from storytransformer.similarity.index import SimilarityIndex  # noqa: E402
from storytransformer.similarity.near_pairs import near_pairs  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
DEFAULT_SCORES = OUT / "similarity_lm_judge-qwen1.5b.json"
DEFAULT_SWAPPED = OUT / "similarity_lm_judge-qwen1.5b-swapped.json"
GRID = [round(0.40 + 0.005 * i, 3) for i in range(81)]  # 0.40 .. 0.80


def prf(rows: list[dict], decide) -> dict:
    tp = sum(r["label"] == "duplicate" and decide(r) for r in rows)
    fp = sum(r["label"] != "duplicate" and decide(r) for r in rows)
    fn = sum(r["label"] == "duplicate" and not decide(r) for r in rows)
    return {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None, "flagged": tp + fp, "gold": tp + fn}


def with_model(add: float, keep: float, band: float = 0.0):
    """The decision of check --model-checks for one labelled pair (see the module docstring)."""
    def decide(r: dict) -> bool:
        p = r["p"]
        if band and r.get("p_other") is not None and abs(p - (keep if r["index"] else add)) < band:
            p = (p + r["p_other"]) / 2
        if r["index"]:
            return not (r["asked"] and p < keep)
        return r["asked"] and p >= add
    return decide


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scores", type=Path, default=DEFAULT_SCORES,
                    help="a similarity_lm_judge.py result with the 'redundant' question (default: the 1.5B judge model's)")
    ap.add_argument("--swapped-scores", type=Path, default=DEFAULT_SWAPPED,
                    help="the same question with each pair's stories the other way round (similarity_lm_judge.py "
                         "--swapped); without it the pairs are replayed in one order only")
    ap.add_argument("--band", type=float, default=None,
                    help="ask again the other way round within this distance of the cut (default: the shipped one)")
    args = ap.parse_args(argv)
    if not REAL.is_dir():
        print("real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)", file=sys.stderr)
        return 2
    scores = json.loads(args.scores.read_text("utf-8"))
    if "redundant" not in scores.get("questions", {}):
        print(f"{args.scores}: no P(yes) for the 'redundant' question (run similarity_lm_judge.py --questions redundant)",
              file=sys.stderr)
        return 2
    p_yes = {r["id"]: r["redundant"] for r in scores["pairs"]}
    swapped = json.loads(args.swapped_scores.read_text("utf-8")) if args.swapped_scores.is_file() else None
    p_swapped = {r["id"]: r["redundant"] for r in swapped["pairs"]} if swapped else {}
    pairs = load_pairs()
    config = Config()
    (index_says,) = predictions(pairs, config, [Thresholds.of(config.similarity)])
    ws, keys = workspace_of(pairs, config)
    near = {frozenset(((a.file, a.id), (b.file, b.id))) for a, b, _ in
            near_pairs(SimilarityIndex.build(ws.stories(), config.similarity))}
    position = {(st.file, st.id): (st.file, st.range.start.line) for st in ws.stories()}
    rows = []
    for p in pairs:
        ka, kb = keys[p["a"]], keys[p["b"] or p["id"]]
        first, other = p_yes[p["id"]], p_swapped.get(p["id"])
        if other is not None and position[kb] < position[ka]:  # the product reads the earlier story first
            first, other = other, first
        rows.append({"id": p["id"], "part": p["part"], "label": p["label"], "p": first, "p_other": other,
                     "index": index_says[p["id"]] == "duplicate", "asked": frozenset((ka, kb)) in near})
    tune = [r for r in rows if r["part"] == "tune"]
    held = [r for r in rows if r["part"] == "held_out"]

    model_name = scores.get("model", "?")
    shipped = TUNED.get(Path(model_name.split(" (")[0]).name.lower())
    band = args.band if args.band is not None else (shipped.band if shipped and swapped else 0.0)
    grid = [(add, keep, prf(tune, with_model(add, keep, band))["f1"] or 0.0)
            for add in GRID for keep in GRID if keep <= add]
    best_f1 = max(f for *_, f in grid)
    plateau = [(add, keep) for add, keep, f in grid if f >= best_f1 - 1e-9]
    adds = sorted({a for a, _ in plateau})
    add = adds[len(adds) // 2]
    keeps = sorted(k for a, k in plateau if a == add)
    keep = keeps[len(keeps) // 2]

    result = {"date": time.strftime("%Y-%m-%d"), "scores": args.scores.name, "model": model_name,
              "asked": {part: {"duplicates": sum(r["label"] == "duplicate" for r in sub),
                               "duplicates asked": sum(r["label"] == "duplicate" and r["asked"] for r in sub)}
                        for part, sub in (("tune", tune), ("held_out", held))},
              "swapped_scores": args.swapped_scores.name if swapped else None, "band": band,
              "chosen": {"add": add, "keep": keep, "tune_f1": best_f1},
              "shipped": {"add": shipped.add, "keep": shipped.keep, "band": shipped.band} if shipped else None,
              "asked_again": {part: sum(1 for r in sub if r["asked"] and r["p_other"] is not None and band
                                        and abs(r["p"] - (keep if r["index"] else add)) < band)
                              for part, sub in (("tune", tune), ("held_out", held))},
              "rows": {}}
    settings = [("index alone (ST603)", lambda r: r["index"])]
    if band:
        one = [(a, k, prf(tune, with_model(a, k))["f1"] or 0.0) for a in GRID for k in GRID if k <= a]
        best_one = max(f for *_, f in one)
        plat = sorted((a, k) for a, k, f in one if f >= best_one - 1e-9)
        a1 = sorted({a for a, _ in plat})[len({a for a, _ in plat}) // 2]
        k1 = sorted(k for a, k in plat if a == a1)[len([k for a, k in plat if a == a1]) // 2]
        settings.append((f"index + model, one order, cuts chosen here (add {a1:g}, keep {k1:g})", with_model(a1, k1)))
    settings.append((f"index + model, cuts chosen here (add {add:g}, keep {keep:g}"
                     + (f", again the other way round within {band:g})" if band else ")"), with_model(add, keep, band)))
    if shipped:
        settings.append((f"index + model, shipped cuts (add {shipped.add:g}, keep {shipped.keep:g}"
                         + (f", band {shipped.band:g})" if shipped.band else ")"),
                         with_model(shipped.add, shipped.keep, band)))
    lines = ["# The language model as the second judge of duplicate pairs", "",
             f"{result['date']}. Command: `python benchmarks/similarity_model_judge.py --scores {args.scores.name}`. "
             f"P(yes) of {model_name} from `{args.scores.name}`; the index's decisions and near pairs with the "
             "shipped settings. A pair is asked when it is one of the index's near pairs (each story's 3 nearest "
             "neighbours at a whole cosine of 0.6 or more).", "",
             f"Labelled duplicates among the near pairs: tune {result['asked']['tune']['duplicates asked']} of "
             f"{result['asked']['tune']['duplicates']}, held-out {result['asked']['held_out']['duplicates asked']} of "
             f"{result['asked']['held_out']['duplicates']}."
             + (f" Asked again the other way round (within {band:g} of the cut, chosen cuts): tune "
                f"{result['asked_again']['tune']}, held-out {result['asked_again']['held_out']} pairs."
                if band else ""), "",
             "| decision | tune P | tune R | tune F1 | held-out P | held-out R | held-out F1 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, decide in settings:
        t_, h_ = prf(tune, decide), prf(held, decide)
        result["rows"][name] = {"tune": t_, "held_out": h_}
        lines.append(f"| {name} | {fmt(t_['precision'])} | {fmt(t_['recall'])} | {fmt(t_['f1'])} | "
                     f"{fmt(h_['precision'])} | {fmt(h_['recall'])} | {fmt(h_['f1'])} |")
    lines += ["", "Target (issue: duplicates said in other words): recall >= 0.90 at precision >= 0.90 on the held-out pairs."]
    if shipped and (abs(shipped.add - add) > 1e-9 or abs(shipped.keep - keep) > 1e-9):
        lines.append(f"\nNOTE: the shipped cuts differ from those the tune pairs choose here (add {add:g}, keep {keep:g}).")
    text = "\n".join(lines)
    print(text)
    (OUT / "similarity_model_judge.md").write_text(text + "\n", "utf-8")
    (OUT / "similarity_model_judge.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

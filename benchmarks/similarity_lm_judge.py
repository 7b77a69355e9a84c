"""Can a language model judge duplicate pairs? Its P(yes) on the labelled pairs, as a ranking (AUC).

Every pair of benchmarks/labels/pairs/ (docs/labelling.md) is put to the configured language model as
two yes/no questions, scored the way the model checks score (storytransformer/engine/judge.py: the
probability of "yes" against "no", nothing generated). A judge worth adding to the pair judge ranks the
pairs annotators call duplicates above the others; the AUC says how often it does (0.5: chance), beside
the packaged embedding model's whole-story cosine on the same pairs. Reported on all pairs and on those
the index would consider at all (whole cosine >= 0.60, the second judge's gate), tune and held-out apart.
Prints the table and writes docs/benchmarks/similarity_lm_judge.json|md.

    python benchmarks/similarity_lm_judge.py                       # the packaged SmolLM2-135M on the CPU
    python benchmarks/similarity_lm_judge.py --model DIR --device cuda   # a model of your own
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from similarity_quality import REAL, load_pairs, workspace_of  # noqa: E402
from storytransformer.config import Config, EngineConfig  # noqa: E402
from storytransformer.engine import judge  # noqa: E402
from storytransformer.engine.prompts import delimit  # noqa: E402
from storytransformer.similarity.index import SimilarityIndex  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
QUESTIONS = {"same feature": "Do these two user stories ask for the same feature?",
             "duplicate": "Is the second story a duplicate of the first one, written in other words?",
             # worded on the tune pairs with Qwen2.5-Coder-1.5B (docs/benchmarks/larger_model_probe.md)
             "redundant": "Do both stories ask for the same functionality, so that one of them is redundant?",
             # the labelling guideline's "overlap": merge-worthy, whether or not one of them is redundant
             "merge": "Does most of what one story asks for also appear in the other, so that a backlog owner "
                      "would merge them into one story?"}
GATE = 0.60


def auc(positive: list[float], negative: list[float]) -> float | None:
    """The share of (positive, negative) pairs ranked the right way (ROC AUC); None without both kinds."""
    if not positive or not negative:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([1] * len(positive) + [0] * len(negative), [*positive, *negative]))


def command(args) -> str:
    """The command line of this run, naming a model of one's own by its file name only (no local paths)."""
    parts = ["python benchmarks/similarity_lm_judge.py"]
    if args.model:
        parts.append(f"--model {Path(args.model).name}")
    if args.device != "cpu":
        parts.append(f"--device {args.device}")
    if args.questions != ",".join(QUESTIONS):
        parts.append(f"--questions {args.questions}")
    if args.swapped:
        parts.append("--swapped")
    if args.min_whole > -1.0:
        parts.append(f"--min-whole {args.min_whole:g}")
    if args.name != "similarity_lm_judge":
        parts.append(f"--name {args.name}")
    return " ".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="engine.model (default: the packaged SmolLM2-135M)")
    ap.add_argument("--device", default="cpu", help="engine.device (default cpu)")
    ap.add_argument("--questions", default=",".join(QUESTIONS), help=f"which questions (of {', '.join(QUESTIONS)})")
    ap.add_argument("--swapped", action="store_true",
                    help="put each pair's second story first (to measure and average out the order's effect)")
    ap.add_argument("--min-whole", type=float, default=-1.0,
                    help="ask only the pairs at this whole cosine or more (the judge asks near pairs at 0.60 or more)")
    ap.add_argument("--name", default="similarity_lm_judge",
                    help="the results' file name under docs/benchmarks/ (NAME.md, NAME.json with every pair's P(yes))")
    args = ap.parse_args(argv)
    unknown = set(args.questions.split(",")) - set(QUESTIONS)
    if unknown:
        ap.error(f"--questions: unknown {', '.join(sorted(unknown))} (known: {', '.join(QUESTIONS)})")
    asked = {name: QUESTIONS[name] for name in args.questions.split(",")}
    if not REAL.is_dir():
        print("real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)", file=sys.stderr)
        return 2
    from storytransformer.engine import create_engine

    pairs = load_pairs()
    config = Config()
    ws, keys = workspace_of(pairs, config)
    scoring = copy.deepcopy(config.similarity)
    scoring.judge = True
    index = SimilarityIndex.build(ws.stories(), scoring)
    index.thresholds = replace(index.thresholds, whole=-1.0)  # every pair's scores, whatever its cosine
    engine = create_engine(Config(engine=EngineConfig(model=args.model, generate=False, device=args.device)))
    engine.load()
    started = time.perf_counter()
    rows = []
    for p in pairs:
        ka, kb = keys[p["a"]], keys[p["b"] or p["id"]]
        a, b = index.story(ka), index.story(kb)
        if args.swapped:
            a, b = b, a
        row = {"id": p["id"], "part": p["part"], "label": p["label"], "whole": index.pair_scores(ka, kb).whole}
        if row["whole"] < args.min_whole:
            continue
        for name, ask in asked.items():
            messages = [{"role": "system", "content": judge.SYSTEM},
                        {"role": "user", "content": f"<story>{delimit(a.text)}</story>\n<story>{delimit(b.text)}</story>\n"
                                                    f"{ask} Answer yes or no."}]
            row[name] = judge.p_yes(engine.score(list(judge.YES + judge.NO), context=engine.render(messages)))
        rows.append(row)
    seconds = time.perf_counter() - started
    model = judge._model_name(engine)
    result = {"date": time.strftime("%Y-%m-%d"), "model": model, "device": args.device, "seconds": round(seconds, 1),
              "swapped": args.swapped, "min_whole": args.min_whole,
              "questions": asked, "auc": {}, "pairs": rows}
    lines = ["# A language model as a judge of duplicate pairs", "",
             f"{result['date']}. Command: `{command(args)}`. "
             f"Model: {model} on {args.device}; {len(rows)} labelled pairs, {len(asked) * len(rows)} questions in "
             f"{seconds:.0f} s.",
             "AUC of P(yes) for pairs labelled duplicate against all others (0.5: chance), beside the packaged embedding",
             "model's whole-story cosine on the same pairs.", "",
             "| pairs | part | n | duplicates | " + " | ".join(f"P(yes): {n}" for n in asked) + " | whole cosine |",
             "|---|---|---:|---:|" + "---:|" * (len(asked) + 1)]
    for region in ("all", f"whole >= {GATE}"):
        for part in ("tune", "held_out"):
            sub = [r for r in rows if r["part"] == part and (region == "all" or r["whole"] >= GATE)]
            pos = [r for r in sub if r["label"] == "duplicate"]
            neg = [r for r in sub if r["label"] != "duplicate"]
            scores = {n: auc([r[n] for r in pos], [r[n] for r in neg]) for n in [*asked, "whole"]}
            result["auc"][f"{region} / {part}"] = {"n": len(sub), "duplicates": len(pos), **scores}
            cells = " | ".join("-" if v is None else f"{v:.2f}" for v in scores.values())
            lines.append(f"| {region} | {part.replace('_', '-')} | {len(sub)} | {len(pos)} | {cells} |")
    text = "\n".join(lines)
    print(text)
    (OUT / f"{args.name}.md").write_text(text + "\n", "utf-8")
    (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Do two benefits state the same goal? The judge a duplicate merge asks before it sets one aside.

Items (benchmarks/labels/benefits/benefits.csv, docs/labelling.md "Labelling two benefits"): the
benefits of both stories of every labelled duplicate or overlap pair that has two (`pair`), and of a
story of such a pair and its nearest other story of the backlog (`neighbour`: the same topic, most
often another goal). Two annotators labelled each item same / different alone; the disagreements
were adjudicated. An item counts as judged *same* when the judge lets either benefit be set aside for
the other. Errors: a different benefit judged same is *lost* from the merge; a same benefit judged
different is *said twice* (both kept). Judges: setting any benefit aside (the merge before the judge),
shared words (no model) and meaning (the shipped one: embedding cosine at the cut of
storytransformer/similarity/benefits.py, and no benefit that adds a goal). The cut is chosen on the
tune part (the sweep below), and then, for two stories whose means are nearly one sentence, a lower cut
and how close the means must be (the second sweep); the held-out part is the test. Prints the tables and
writes docs/benchmarks/benefits.json|md.

    python benchmarks/benefit_quality.py
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
ITEMS = ROOT / "benchmarks" / "labels" / "benefits" / "benefits.csv"
OUT = ROOT / "docs" / "benchmarks"

from similarity_quality import REAL, load_pairs, workspace_of  # noqa: E402

from storytransformer.config import Config  # noqa: E402
from storytransformer.similarity.benefits import (ALIKE_COSINE, CLOSE_MEANS_ALIKE_COSINE, CLOSE_MEANS_COSINE,  # noqa: E402
                                                  EmbeddedBenefits)
from storytransformer.similarity.embedder import shared_embedder  # noqa: E402
from storytransformer.similarity.needs import means_text, shared_words_alike  # noqa: E402

CUTS = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8]
CLOSE_CUTS = [0.45, 0.5, 0.55, 0.6]  # the benefits' cut for stories with close means
CLOSE_MEANS = [0.75, 0.8, 0.85, 0.9]  # how close the means must be


def load_items() -> list[dict]:
    """The labelled items with both benefits' texts (read from the real backlogs and our paraphrases)."""
    with ITEMS.open(encoding="utf-8", newline="") as f:
        items = list(csv.DictReader(f))
    ws, keys = workspace_of(load_pairs(), Config())
    stories = {(s.file, s.id): s for s in ws.stories()}
    for it in items:
        for side in ("a", "b"):
            story = stories[keys[it[side]]]
            it[f"{side}_text"] = story.ends.text.strip(" ,.;")
            it[f"{side}_means"] = means_text(story)
    return items


def alike_both_ways(judge, it: dict) -> bool:
    """Either benefit may be set aside for the other (the judge also given the two stories' means)."""
    return (judge(it["a_text"], it["b_text"], it["a_means"], it["b_means"])
            or judge(it["b_text"], it["a_text"], it["b_means"], it["a_means"]))


def errors(items: list[dict], judged: list[bool]) -> dict:
    different = [i for i, it in enumerate(items) if it["label"] == "different"]
    same = [i for i, it in enumerate(items) if it["label"] == "same"]
    lost = sum(judged[i] for i in different)
    twice = sum(not judged[i] for i in same)
    return {"items": len(items), "same": len(same), "different": len(different), "lost": lost, "said_twice": twice,
            "different_kept": (len(different) - lost) / len(different) if different else None,
            "same_set_aside": (len(same) - twice) / len(same) if same else None}


def pct(x) -> str:
    return "-" if x is None else f"{x:.0%}"


def main() -> int:
    if not REAL.is_dir():
        print("real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    items = load_items()
    meaning = EmbeddedBenefits(shared_embedder())
    judges = {
        "any benefit set aside (before)": [True] * len(items),
        "shared words (no model)": [alike_both_ways(shared_words_alike, it) for it in items],
        f"meaning, cut {ALIKE_COSINE} (before)": [alike_both_ways(EmbeddedBenefits(meaning.embedder, close_cut=1.0), it)
                                                for it in items],
        f"meaning, cut {ALIKE_COSINE}, {CLOSE_MEANS_ALIKE_COSINE} where the means are {CLOSE_MEANS_COSINE} close "
        "(shipped)": [alike_both_ways(meaning, it) for it in items],
    }

    def subset(part: str, kind: str) -> list[int]:
        return [i for i, it in enumerate(items) if it["part"] == part and kind in ("all", it["kind"])]

    rows, lines = [], []
    for part in ("tune", "held_out"):
        for kind in ("pair", "all"):
            idx = subset(part, kind)
            for name, judged in judges.items():
                e = errors([items[i] for i in idx], [judged[i] for i in idx])
                rows.append({"part": part, "subset": kind, "judge": name, **e})
    sweep = []
    idx = subset("tune", "all")
    for cut in CUTS:
        at_cut = EmbeddedBenefits(meaning.embedder, cut, close_cut=1.0)
        judged = [alike_both_ways(at_cut, items[i]) for i in idx]
        sweep.append({"cut": cut, **errors([items[i] for i in idx], judged)})
    best = min(sweep, key=lambda r: (r["lost"] + r["said_twice"], r["lost"]))
    close_sweep = []  # at the chosen cut: a lower one where the means are close
    for close_cut in CLOSE_CUTS:
        for close_means in CLOSE_MEANS:
            at = EmbeddedBenefits(meaning.embedder, best["cut"], close_cut, close_means)
            judged = [alike_both_ways(at, items[i]) for i in idx]
            close_sweep.append({"close_cut": close_cut, "close_means": close_means,
                                **errors([items[i] for i in idx], judged)})
    # fewest errors, then fewest lost, then the most demanding cuts
    best_close = min(close_sweep, key=lambda r: (r["lost"] + r["said_twice"], r["lost"], -r["close_cut"],
                                                 -r["close_means"]))

    agree = sum(it["annotator_a"] == it["annotator_b"] for it in items)
    pa = sum(it["annotator_a"] == "same" for it in items) / len(items)
    pb = sum(it["annotator_b"] == "same" for it in items) / len(items)
    pe = pa * pb + (1 - pa) * (1 - pb)
    kappa = (agree / len(items) - pe) / (1 - pe)
    lines += ["# Benefits set aside in duplicate merges: the same goal, or another?", "",
              f"{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/benefit_quality.py`. {len(items)} items "
              "(benchmarks/labels/benefits/, docs/labelling.md), labelled same / different by two annotators working "
              f"alone: agreement {agree} of {len(items)} ({agree / len(items):.0%}), Cohen's kappa {kappa:.2f}; the "
              f"{len(items) - agree} disagreements adjudicated.", "",
              "*pair*: the two benefits of a labelled duplicate or overlap pair (what a merge meets). *all*: with the "
              "benefit of each such story's nearest other story of its backlog (same topic, mostly another goal). "
              "*lost*: a different benefit the judge lets a merge set aside; *said twice*: a same benefit it keeps "
              "beside the other. Kept apart: share of different benefits kept; set aside: share of same benefits "
              "written once.", ""]
    for part in ("held_out", "tune"):
        lines += [f"### {part.replace('_', '-')} items", "",
                  "| items | judge | n | same | different | lost | said twice | different kept apart | same set aside |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            if r["part"] == part:
                lines.append(f"| {r['subset']} | {r['judge']} | {r['items']} | {r['same']} | {r['different']} | {r['lost']} | {r['said_twice']} | "
                             f"{pct(r['different_kept'])} | {pct(r['same_set_aside'])} |")
        lines.append("")
    lines += ["### The cut, chosen on the tune items (all), fewest errors, then fewest lost", "",
              "| cosine cut | lost | said twice |", "|---:|---:|---:|"]
    lines += [f"| {r['cut']}{' (chosen)' if r is best else ''} | {r['lost']} | {r['said_twice']} |" for r in sweep]
    lines += ["", f"### Stories whose means are close: a lower cut for their benefits (at the cut {best['cut']}; "
              "tune items, all; fewest errors, then fewest lost, then the most demanding)", "",
              "| benefits' cut | means' cosine at least | lost | said twice |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['close_cut']} | {r['close_means']}{' (chosen)' if r is best_close else ''} | {r['lost']} | "
              f"{r['said_twice']} |" for r in close_sweep]
    lines += ["", f"Shipped: {ALIKE_COSINE}, and {CLOSE_MEANS_ALIKE_COSINE} where the means' cosine is at least "
              f"{CLOSE_MEANS_COSINE}. {time.perf_counter() - started:.1f} s.", ""]
    text = "\n".join(lines)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "benefits.md").write_text(text, encoding="utf-8")
    (OUT / "benefits.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "agreement": agree / len(items),
                                                   "kappa": round(kappa, 3), "rows": rows, "sweep": sweep,
                                                   "chosen_cut": best["cut"], "shipped_cut": ALIKE_COSINE,
                                                   "close_sweep": close_sweep,
                                                   "chosen_close": {k: best_close[k] for k in ("close_cut", "close_means")},
                                                   "shipped_close": {"close_cut": CLOSE_MEANS_ALIKE_COSINE,
                                                                     "close_means": CLOSE_MEANS_COSINE}},
                                                  indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does the first merged story keep what its stories asked for, and invent nothing?

For every pair labelled duplicate or overlap in benchmarks/labels/pairs/pairs.csv (real stories from
the backlogs, written paraphrases in b_text), takes the first merge proposal the product shows
(storytransformer.similarity.merge.merge_proposals, the first that the grounding validator accepts:
well-formed, atomic, minimal unless a source is not, no new finding, nothing invented, every need kept) and reports:

- coverage: the share of source requirements (each source's role, action, object and benefit) the
  first proposal keeps: present in its words, or set aside because the other source's part of the
  same kind, which the merge keeps, says it (duplicates only); a pair with no proposal keeps none;
- grounding: content words of first proposals that no source has (must be 0);
- no proposal: pairs for which no merge keeps every need and passes the rules;
- strict: the same with every pair treated as an overlap (nothing may be set aside), which is
  what the previous merge did for all pairs.

Duplicates are told apart from overlaps by the pair's adjudicated label here; in the product the
detector's relation (ST603 duplicate, ST604 overlap) or the user (`suggest merge --duplicates`) says
it, so these figures are merge quality given the relation, not detection quality.

Annotator acceptance of the first proposal is not measured: the held-out proposals are written to
benchmarks/out/merge_proposals_held_out.csv for two annotators to judge (see docs/benchmarks/merge_quality.md).
Texts made from the real backlogs (the proposals, the examples) stay in benchmarks/out/, never in docs/:
the backlogs are not ours to copy.

Prints the table and writes docs/benchmarks/merge_quality.md and .json.

    python benchmarks/merge_quality.py
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "docs" / "benchmarks"
LOCAL = ROOT / "benchmarks" / "out"  # what quotes the real backlogs: kept out of the repository (.gitignore)

from similarity_quality import REAL, load_pairs, workspace_of  # noqa: E402

from storytransformer.config import Config  # noqa: E402
from storytransformer.engine.grounding import Validator  # noqa: E402
from storytransformer.similarity.benefits import same_need_by_meaning  # noqa: E402
from storytransformer.similarity.merge import merge_proposals  # noqa: E402
from storytransformer.similarity.needs import coverage, keeps_every_need, requirements  # noqa: E402

LABELS = ("duplicate", "overlap")


ACCEPTANCE = ROOT / "benchmarks" / "labels" / "merge_acceptance" / "adjudicated.csv"


def acceptance_lines(rows: list[dict]) -> list[str]:
    """How often annotators accept the first proposal of a held-out pair (benchmarks/labels/merge_acceptance/);
    a verdict counts only while this code still proposes the text that was judged (its SHA-1)."""
    held = [r for r in rows if r["part"] == "held_out"]
    if not ACCEPTANCE.is_file():
        return ["Annotator acceptance of the first proposal: not measured (no benchmarks/labels/merge_acceptance/)."]
    judged = {r["id"]: r for r in csv.DictReader(ACCEPTANCE.open(encoding="utf-8"))}
    counts = {"accept": 0, "edit": 0, "reject": 0, "stale": 0, "unjudged": 0}
    proposed = [r for r in held if r["now"]["merged"]]
    for r in proposed:
        j = judged.get(r["id"])
        if j is None:
            counts["unjudged"] += 1
        elif j["proposal_sha1"] != hashlib.sha1(r["now"]["merged"].encode()).hexdigest()[:12]:
            counts["stale"] += 1
        else:
            counts[j["verdict"]] += 1
    n = len(held)
    out = ["## Do annotators accept the first proposal?", "",
           f"Held-out pairs: {n}; with a first proposal: {len(proposed)}. Two annotators judged each proposal alone "
           "(benchmarks/labels/merge_acceptance/README.md: agreement and adjudication).", "",
           "| verdict | proposals | share of proposals | share of all held-out pairs |", "|---|---:|---:|---:|"]
    for v in ("accept", "edit", "reject"):
        out.append(f"| {v} | {counts[v]} | {counts[v] / max(len(proposed), 1):.0%} | {counts[v] / max(n, 1):.0%} |")
    if counts["stale"] or counts["unjudged"]:
        out += ["", f"Not counted: {counts['stale']} proposals changed since they were judged, {counts['unjudged']} "
                "never judged; judge them again (the README says how)."]
    return out


def tidy(text: str) -> str:
    """Stories named by backlog file:line, without where this machine keeps the backlogs."""
    return text.replace(str(REAL) + "/", "")


def first_shown(validator: Validator, sources, same_need):
    """(first merge the validator accepts or None, its validator reasons when none is, proposals tried)."""
    tried = [m for m in merge_proposals(sources, same_need) if m.kept]
    reasons: list[str] = []
    for m in tried:
        g = validator.check([m.text], sources, keep_needs=True, same_need=same_need)
        if g.accepted:
            return m, [], len(tried)
        reasons = reasons or list(g.reasons)
    return None, reasons, len(tried)


def measure(validator: Validator, a, b, same_need) -> dict:
    sources = [a, b]
    total = sum(len(requirements(s)) for s in sources)
    merge, reasons, tried = first_shown(validator, sources, same_need)
    if merge is None:
        refused = merge_proposals(sources, same_need)[0]
        return {"merged": None, "present": 0, "said": 0, "total": total, "invented": [],
                "why": refused.reason or "; ".join(reasons), "alternatives": 0}
    cov = coverage(merge.text, sources, keeps_every_need(merge.text, sources, same_need))
    return {"merged": merge.text, "present": cov.present, "said": cov.said, "total": total,
            "invented": validator.invented_words([merge.text], sources),
            "said_by": [str(x) for x in merge.said], "provenance": dict(merge.provenance),
            "alternatives": tried - 1, "why": ""}


def summarise(rows: list[dict], key: str) -> dict:
    out = {}
    for label in (*LABELS, "all"):
        rs = [r[key] for r in rows if label == "all" or r["label"] == label]
        total = sum(r["total"] for r in rs)
        out[label] = {"pairs": len(rs), "coverage": sum(r["present"] + r["said"] for r in rs) / total,
                      "present": sum(r["present"] for r in rs) / total, "said": sum(r["said"] for r in rs) / total,
                      "no_proposal": sum(r["merged"] is None for r in rs) / len(rs),
                      "invented": sum(len(r["invented"]) for r in rs)}
    return out


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
    duplicates = same_need_by_meaning(config=config.similarity)  # as `suggest merge --duplicates` judges benefits
    rows = []
    for p in pairs:
        a, b = by_key[keys[p["a"]]], by_key[keys[p["b"] or p["id"]]]
        # real stories by backlog file:line (their text stays in the backlogs); written paraphrases are ours
        rows.append({"id": p["id"], "label": p["label"], "part": p["part"], "a": p["a"], "b": p["b"] or p["b_text"],
                     "now": measure(validator, a, b, same_need=duplicates if p["label"] == "duplicate" else False),
                     "strict": measure(validator, a, b, same_need=False)})
    summary = {part: {"now": summarise([r for r in rows if part == "all" or r["part"] == part], "now"),
                      "strict": summarise([r for r in rows if part == "all" or r["part"] == part], "strict")}
               for part in ("all", "tune", "held_out")}
    seconds = time.perf_counter() - t0
    lines = ["# Merge quality: does the first merged story keep every need and invent nothing?", "",
             f"Pairs labelled duplicate or overlap in benchmarks/labels/pairs/pairs.csv; written by "
             f"benchmarks/merge_quality.py on {time.strftime('%Y-%m-%d')} ({seconds:.1f} s).", "",
             "The first proposal is the first merge that keeps every need and that the grounding validator accepts "
             "(well-formed, atomic, minimal unless a source is not, no finding the sources lack, no word the sources lack). Requirements: each "
             "source's role, action (first content word of the means), object (the rest of the means) and benefit "
             "(ends). Coverage counts a requirement kept when its words are in the merge (*present*) or when the pair "
             "is a duplicate and the merge keeps the other source's part of that kind, listing this one as said by "
             "it (*said*). A pair with no proposal keeps nothing. Invented: content words of first proposals that "
             "no source has.", "",
             "Duplicates are told from overlaps by the adjudicated label here (in the product: the detector's ST603 "
             "or `suggest merge --duplicates`); *strict* treats every pair as an overlap, as the previous merge did.", "",
             "Real stories are named by backlog:line (the backlogs are not copied here); the paraphrases are our own text.", "",
             "| part | pairs | n | coverage | present | said | no proposal | invented words | strict: coverage | strict: no proposal |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for part in ("all", "tune", "held_out"):
        for label in (*LABELS, "all"):
            s, t = summary[part]["now"][label], summary[part]["strict"][label]
            lines.append(f"| {part} | {label} | {s['pairs']} | {s['coverage']:.0%} | {s['present']:.0%} | {s['said']:.0%} "
                         f"| {s['no_proposal']:.0%} | {s['invented']} | {t['coverage']:.0%} | {t['no_proposal']:.0%} |")
    lines += ["", *acceptance_lines(rows), ""]
    examples = ["## Examples", ""]
    shown = [r for r in rows if r["now"]["merged"] and r["now"]["said"]][:4] + \
        [r for r in rows if r["now"]["merged"] and not r["now"]["said"] and r["label"] == "overlap"][:2]
    for r in shown:
        n = r["now"]
        examples += [f"- {r['id']} ({r['label']}): {r['a']!r} + {r['b']!r}", f"  - first proposal: {n['merged']!r}"]
        examples += [f"  - said by the other source: {x}" for x in n.get("said_by", [])]
    for r in [r for r in rows if not r["now"]["merged"]][:4]:
        examples += [f"- {r['id']} ({r['label']}), no proposal: {r['a']!r} + {r['b']!r}", f"  - {r['now']['why']}"]
    lines += ["Examples and every pair's proposal: benchmarks/out/merge_examples.md and merge_pairs.json (written by this "
              "script; they quote the real backlogs, so they are not published here).", ""]
    text = tidy("\n".join(lines) + "\n")
    OUT.mkdir(parents=True, exist_ok=True)
    LOCAL.mkdir(parents=True, exist_ok=True)
    (OUT / "merge_quality.md").write_text(text, encoding="utf-8")
    (OUT / "merge_quality.json").write_text(tidy(json.dumps({"summary": summary}, indent=1)) + "\n", encoding="utf-8")
    (LOCAL / "merge_examples.md").write_text(tidy("\n".join(examples) + "\n"), encoding="utf-8")
    (LOCAL / "merge_pairs.json").write_text(tidy(json.dumps(rows, indent=1)) + "\n", encoding="utf-8")
    with open(LOCAL / "merge_proposals_held_out.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "a", "b", "first_proposal", "said_by_other_source", "no_proposal_because",
                    "annotator_a", "annotator_b"])
        for r in rows:
            if r["part"] == "held_out":
                n = r["now"]
                w.writerow([r["id"], r["label"], r["a"], r["b"], n["merged"] or "",
                            tidy(" | ".join(n.get("said_by", []))), tidy(n["why"]), "", ""])
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

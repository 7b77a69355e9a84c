"""Would a product owner take the split that `check` proposes for a story that asks for several things?

Every ST201 finding (conjoined actions) on the 22 real backlogs, each backlog checked alone, with the
split its quick fix would write. Two annotators judged each proposal alone (accept / edit / reject,
benchmarks/labels/split_acceptance/README.md); this script reports, per part of the fixed split of the
backlogs (benchmarks/labels/qus/split.json: the split rule is tuned on *tune*, *held_out* is the test):

- findings: ST201 findings; offered: those with a split (a finding without one is split by hand);
- accept / edit / reject: the annotators' adjudicated verdicts of the offered splits whose text they
  judged (a verdict counts only while the code still proposes the judged text: its SHA-1 must match);
- unjudged: offered splits whose text changed since it was judged, or that were never judged;
- withheld acceptable: findings that no longer get a split though annotators accepted (or would have
  edited) the split judged for them: what a stricter split costs.

Texts made from the real backlogs stay in benchmarks/out/split_proposals.csv (`--write-proposals`),
never in docs/: the backlogs are not ours to copy. Prints the table and writes
docs/benchmarks/split_quality.md and .json.

    python benchmarks/split_quality.py [--write-proposals]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from qus_labels import LABELS, REAL  # noqa: E402
from storytransformer.config import Config  # noqa: E402
from storytransformer.lint import Linter  # noqa: E402
from storytransformer.workspace import Workspace  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
PROPOSALS = ROOT / "benchmarks" / "out" / "split_proposals.csv"
VERDICTS = ROOT / "benchmarks" / "labels" / "split_acceptance"
KINDS = ("accept", "edit", "reject")


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def proposals() -> list[dict]:
    """One row per ST201 finding: id (backlog:line), the story, and the split its fix writes ('' if none)."""
    rows = []
    config = Config()
    for path in sorted(REAL.glob("*.txt")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        ws = Workspace.from_paths([path], config)
        for f in Linter(ws, use_disk_cache=False).check():
            if f.code != "ST201":
                continue
            line = f.range.start.line + 1
            split = f.fix.edits[0].new_text if f.fix is not None else ""
            rows.append({"id": f"{path.stem}:{line}", "backlog": path.stem, "story": lines[line - 1].strip(),
                         "split": split, "proposal_sha1": sha1(split) if split else ""})
    return rows


def read_verdicts(name: str) -> dict[str, tuple[str, str]]:
    """id -> (proposal_sha1, verdict) of one verdict file; empty when it does not exist."""
    path = VERDICTS / name
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {r["id"]: (r["proposal_sha1"], r["verdict"]) for r in csv.DictReader(fh)}


def verdicts() -> dict[tuple[str, str], str]:
    """(id, proposal_sha1) -> adjudicated verdict: the first judgement and the re-judged new texts."""
    out = {(k, sha): v for k, (sha, v) in read_verdicts("adjudicated.csv").items()}
    out.update({(k, sha): v for k, (sha, v) in read_verdicts("rejudged.csv").items()})
    return out


def score(rows: list[dict], judged: dict[tuple[str, str], str], first: dict[str, tuple[str, str]]) -> dict:
    """Counts of one part; ``first`` (the first judgement, id -> (sha, verdict)) says what a withheld
    split or a finding no longer made was judged."""
    counts = Counter()
    seen = set()
    for r in rows:
        seen.add(r["id"])
        counts["findings"] += 1
        if not r["split"]:
            was = first.get(r["id"], ("", ""))[1]
            if was:
                counts["withheld acceptable" if was in ("accept", "edit") else "withheld rejected"] += 1
            continue
        counts["offered"] += 1
        counts[judged.get((r["id"], r["proposal_sha1"]), "unjudged")] += 1
    backlogs = {r["backlog"] for r in rows}
    for k, (_, was) in first.items():
        if k.split(":")[0] in backlogs and k not in seen:
            counts["no longer flagged"] += 1
    return dict(counts)


def first_judgement(part_rows_ids: set[str], first: dict[str, tuple[str, str]]) -> dict:
    """The counts of the splits as first judged (the code before the split checks)."""
    counts = Counter(v for k, (_, v) in first.items() if k.split(":")[0] in part_rows_ids)
    counts["offered"] = sum(counts.values())
    return dict(counts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-proposals", action="store_true", help=f"write the proposals to {PROPOSALS.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    if not REAL.is_dir():
        print("real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rows = proposals()
    elapsed = time.perf_counter() - t0
    if args.write_proposals:
        PROPOSALS.parent.mkdir(parents=True, exist_ok=True)
        with PROPOSALS.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=["id", "proposal_sha1", "story", "split"])
            w.writeheader()
            for r in rows:
                if r["split"]:
                    w.writerow({k: r[k] for k in w.fieldnames})
        print(f"wrote {PROPOSALS}")
    split = json.loads((LABELS / "split.json").read_text())
    judged, first = verdicts(), read_verdicts("adjudicated.csv")
    a, b = read_verdicts("annotator-a.csv"), read_verdicts("annotator-b.csv")
    both = [k for k in a if k in b and a[k][0] == b[k][0]]
    agree = sum(a[k][1] == b[k][1] for k in both)
    table = []
    for part in ("tune", "held_out"):
        table.append((f"{part}, as first judged", first_judgement(set(split[part]), first)))
        table.append((f"{part}, now", score([r for r in rows if r["backlog"] in split[part]], judged, first)))
    table.append(("all, now", score(rows, judged, first)))
    head = ["part", "findings", "offered", "accept", "edit", "reject", "unjudged", "withheld acceptable",
            "withheld rejected", "no longer flagged", "reject share", "accepted of judged"]
    lines = ["# Splits of stories that ask for several things", "",
             f"{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/split_quality.py`. Every ST201 finding of `check` on "
             f"the 22 real backlogs (each checked alone; {elapsed:.1f} s) and the split its quick fix writes, judged "
             "by two annotators working alone (benchmarks/labels/split_acceptance/README.md: brief, agreement, "
             "adjudication). Backlogs split into tune and held-out as benchmarks/labels/qus/split.json; the split "
             "checks were chosen on the tune verdicts only. *As first judged*: the splits of the code before those "
             "checks, all judged; *now*: the splits the code writes today.", "",
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, c in table:
        judged_n = sum(c.get(k, 0) for k in KINDS)
        accepted = f"{c.get('accept', 0) / judged_n:.2f}" if judged_n else "-"
        rejected = f"{c.get('reject', 0) / judged_n:.2f}" if judged_n else "-"
        cells = [str(c.get(k, "-" if "first" in name and k in ("findings", "unjudged") else 0)) for k in head[1:-2]]
        lines.append("| " + " | ".join([name, *cells, rejected, accepted]) + " |")
    lines += ["", f"Agreement of the annotators before adjudication: {agree} of {len(both)} proposals"
              + (f" ({agree / len(both):.0%})" if both else "") + ".", "",
              "*accept*: each new story is a whole, grammatical story and together they keep every need of the "
              "original; *edit*: the right cut, with wording to mend (a pronoun whose noun stayed in the other "
              "story, a leftover word); *reject*: a new story is garbled or cut in the wrong place, a need is lost "
              "or changed, or the story asks for one thing and should not be split. *withheld*: findings that now "
              "get no split (split by hand), by their first verdict. *no longer flagged*: judged findings that "
              "ST201 no longer makes."]
    parts = dict(table)
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "split_quality.md").write_text(text, encoding="utf-8")
    (OUT / "split_quality.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "seconds": round(elapsed, 1),
                                                        "parts": parts, "agreement": [agree, len(both)]}, indent=1) + "\n",
                                            encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

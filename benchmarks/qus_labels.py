"""The QUS label corpus in benchmarks/labels/qus/: reading it and scoring against it.

Labels say, per story (backlog file and 1-based line) and per QUS criterion, whether the story has a
defect (docs/labelling.md). Two annotators labelled alone; ``adjudicated/`` is the truth. The split
into backlogs the rules may be tuned on and backlogs held out is fixed in ``split.json``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "benchmarks" / "labels" / "qus"
REAL = ROOT.parent / "shared" / "data" / "backlogs" / "dalpiaz"
AQUSA = ROOT.parent / "shared" / "eval" / "aqusa" / "aqusa_defects.csv"

# Column names in the label files, in the order of the guideline; the tool's criterion names differ
# only in using hyphens.
CRITERIA = ["well_formed", "atomic", "minimal", "conceptually_sound", "problem_oriented", "unambiguous",
            "conflict_free", "full_sentence", "estimatable", "uniform", "unique", "independent", "complete"]
AQUSA_CRITERIA = ["well_formed", "atomic", "minimal", "uniform", "unique"]

Story = tuple[str, int]  # (backlog name without .txt, 1-based line)


@dataclass(frozen=True)
class Score:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp + self.fp + self.fn else None

    def __add__(self, other: "Score") -> "Score":
        return Score(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def score(predicted: set[Story], gold: set[Story], universe: set[Story]) -> Score:
    predicted, gold = predicted & universe, gold & universe
    return Score(len(predicted & gold), len(predicted - gold), len(gold - predicted))


def kappa(a: set[Story], b: set[Story], universe: set[Story]) -> float | None:
    """Cohen's kappa of two binary labellings of ``universe``."""
    n = len(universe)
    if not n:
        return None
    a, b = a & universe, b & universe
    agree = (n - len(a | b) + len(a & b)) / n
    pa, pb = len(a) / n, len(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    return 1.0 if expected == 1 else (agree - expected) / (1 - expected)


def split() -> dict[str, list[str]]:
    return json.loads((LABELS / "split.json").read_text())


def stories(backlogs: list[str]) -> set[Story]:
    """Every non-blank line of the given backlogs."""
    out = set()
    for name in backlogs:
        for i, line in enumerate((REAL / f"{name}.txt").read_text("utf-8").splitlines(), 1):
            if line.strip():
                out.add((name, i))
    return out


def read_labels(who: str) -> dict[str, set[Story]]:
    """criterion -> the stories ``who`` (annotator-a, annotator-b, adjudicated) marked as defective."""
    out = {c: set() for c in CRITERIA}
    for path in sorted((LABELS / who).glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                for c in CRITERIA:
                    if row[c].strip() == "1":
                        out[c].add((path.stem, int(row["line"])))
    return out


def labelled_backlogs(who: str) -> list[str]:
    return sorted(p.stem for p in (LABELS / who).glob("*.csv"))


def aqusa() -> dict[str, set[Story]]:
    """AQUSA's findings by criterion (its defect kinds are ``criterion.kind``)."""
    out = {c: set() for c in CRITERIA}
    with AQUSA.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            criterion = row["defect"].split(".")[0]
            if criterion in out:
                out[criterion].add((row["dataset"], int(row["story_line"])))
    return out


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"

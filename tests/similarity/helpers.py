"""Helpers for the similarity tests: the labelled pairs and finding a story by file and line."""

from __future__ import annotations

from pathlib import Path

# A small slice of the real backlogs (about 230 stories) keeps the cold embedding short on 2 cores.
SUBSET = ("g04-recycling.txt", "g13-planningpoker.txt", "g14-datahub.txt", "g28-zooniverse.txt")
LABELS = Path(__file__).with_name("labelled_pairs.tsv")
INDEPENDENT = Path(__file__).resolve().parents[2] / "benchmarks" / "labels" / "pairs" / "pairs.csv"


def independent_pairs() -> list[tuple[str, str, int, str, int]]:
    """The real pairs of benchmarks/labels/pairs (two annotators, adjudicated): label, file, line, file, line."""
    import csv

    with INDEPENDENT.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["source"] == "real"]
    out = []
    for r in rows:
        (fa, la), (fb, lb) = (x.rsplit(":", 1) for x in (r["a"], r["b"]))
        out.append((r["label"], f"{fa}.txt", int(la), f"{fb}.txt", int(lb)))
    return out


def labelled_pairs() -> list[tuple[str, str, int, str, int]]:
    rows = []
    for line in LABELS.read_text("utf-8").splitlines():
        if line.startswith("#") or line.startswith("label\t") or not line.strip():
            continue
        label, fa, la, fb, lb, _ = line.split("\t")
        rows.append((label, fa, int(la), fb, int(lb)))
    return rows


def story_at(workspace, name: str, line: int):
    """The story on 1-based ``line`` of backlog ``name`` in ``workspace``."""
    for path, source in workspace.files.items():
        if Path(path).name == name:
            for s in source.stories:
                if s.line + 1 == line:
                    return s
    raise LookupError(f"{name}:{line}")

"""Helpers for the similarity tests: the labelled pairs, finding a story by file and line, and the judge's refit check."""

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


def assert_refit_matches(model: dict, tune_rows, shipped_sets) -> None:
    """A judge refitted from the tune labels (``model``, as benchmarks/similarity_judge.py fits it) matches the
    shipped constants ``shipped_sets`` ((name, intercept, coefficients, cut), ...): the cut within one step of
    the benchmark's grid of 0.05 (a cut is chosen by out-of-fold F1, which ties between neighbouring cuts move),
    coefficients within float noise, and the same decision for 99 % of the tune rows at the shipped cut.
    Embeddings computed in other batches differ in the last float bits, which can move a backlog pair across
    the candidate threshold."""
    import numpy as np
    import pytest

    for name, intercept, coef, cut in shipped_sets:
        assert abs(model[name]["cut"] - cut) <= 0.05 + 1e-9, (name, model[name]["cut"], cut)
        assert model[name]["intercept"] == pytest.approx(intercept, rel=0.05, abs=0.05), name
        assert np.allclose(model[name]["coef"], coef, rtol=0.05, atol=0.1), (name, model[name]["coef"], coef)
        shipped = tune_rows @ np.array(coef) + intercept >= np.log(cut / (1 - cut))
        refit = tune_rows @ model[name]["coef"] + model[name]["intercept"] >= np.log(cut / (1 - cut))
        assert (shipped == refit).mean() >= 0.99, name

"""Bar charts as inline SVG, drawn by matplotlib (Agg backend, no display, no network).

Text stays text in the SVG (``svg.fonttype = none``), so the page is small and the
labels are searchable; each chart gets its own id salt so several charts can share
one page without clashing element ids.
"""

from __future__ import annotations

import io
import re
from typing import Sequence

SEVERITY_COLOURS = {"error": "#c62828", "warning": "#ef6c00", "info": "#1565c0", "hint": "#78909c"}
SCORE_COLOURS = ((90, "#2e7d32"), (70, "#9e9d24"), (50, "#ef6c00"), (0, "#c62828"))
MAX_LABEL = 42
MAX_FILE_BARS = 40  # a chart of 200 files is a page tall and slow to draw; the Files table lists every file


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _short(label: str, n: int = MAX_LABEL) -> str:
    return label if len(label) <= n else "…" + label[-(n - 1):]


def to_svg(fig, salt: str, title: str) -> str:
    """The figure as an ``<svg>`` element for inlining (no XML prolog or DOCTYPE)."""
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _pyplot().close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, count=1, flags=re.DOTALL)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_attr(title)}" class="chart-svg" ', 1)


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def hbar(labels: Sequence[str], values: Sequence[float], colours: Sequence[str], *, title: str, xlabel: str,
         salt: str, xmax: float | None = None, annotate: str = "{:g}") -> str:
    """A horizontal bar chart, largest first from the top, one bar per label."""
    plt = _pyplot()
    n = max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(7.2, 0.9 + 0.28 * n), dpi=96)
    ys = range(len(labels))
    ax.barh(list(ys), list(values), color=list(colours), height=0.7)
    ax.set_yticks(list(ys), [_short(x) for x in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_title(title, fontsize=10, loc="left")
    if xmax is not None:
        ax.set_xlim(0, xmax)
    top = max(values, default=0) or 1
    for y, v in zip(ys, values):
        ax.text(v + top * 0.01, y, annotate.format(v), va="center", fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(axis="x", labelsize=8)
    if not labels:
        ax.text(0.5, 0.5, "nothing to show", transform=ax.transAxes, ha="center", va="center")
        ax.set_yticks([])
    return to_svg(fig, salt, title)


def rules_chart(rules: Sequence[dict]) -> str:
    return hbar([f"{r['code']} {r['name']}" for r in rules], [r["count"] for r in rules],
                [SEVERITY_COLOURS.get(r["severity"], "#607d8b") for r in rules],
                title="Findings per rule (colour = severity)", xlabel="findings", salt="rules")


def files_chart(files: Sequence[dict]) -> str:
    """Findings per file, stacked by severity."""
    plt = _pyplot()
    total = len(files)
    files = sorted(files, key=lambda f: (-f["findings"], f["file"]))[:MAX_FILE_BARS]
    title = "Findings per file" + (f" (the {len(files)} with most findings of {total})" if total > len(files) else "")
    n = max(len(files), 1)
    fig, ax = plt.subplots(figsize=(7.2, 0.9 + 0.28 * n), dpi=96)
    ys = list(range(len(files)))
    left = [0] * len(files)
    for sev, colour in SEVERITY_COLOURS.items():
        vals = [f["by_severity"].get(sev, 0) for f in files]
        if any(vals):
            ax.barh(ys, vals, left=left, color=colour, height=0.7, label=sev)
            left = [a + b for a, b in zip(left, vals)]
    names = short_names([f["file"] for f in files])
    ax.set_yticks(ys, [_short(names[f["file"]]) for f in files], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("findings", fontsize=9)
    ax.set_title(title, fontsize=10, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(axis="x", labelsize=8)
    if any(left):
        ax.legend(fontsize=7, frameon=False, loc="lower right")
    return to_svg(fig, "files", title)


def short_names(paths: Sequence[str]) -> dict[str, str]:
    """Each path without the directory all of them share (``a/b/x.txt``, ``a/b/y.txt`` -> ``x.txt``, ``y.txt``)."""
    import os

    if len(paths) < 2:
        return {p: os.path.basename(p) or p for p in paths}
    common = os.path.commonpath(paths) if all(os.path.isabs(p) == os.path.isabs(paths[0]) for p in paths) else ""
    return {p: os.path.relpath(p, common) if common else p for p in paths}


def score_colour(score: float | None) -> str:
    if score is None:
        return "#bdbdbd"
    return next(c for floor, c in SCORE_COLOURS if score >= floor)


def scores_chart(files: Sequence[dict]) -> str:
    scored = sorted((f for f in files if f["score"] is not None), key=lambda f: (f["score"], f["file"]))
    files = scored[:MAX_FILE_BARS]
    names = short_names([f["file"] for f in files])
    worst = f", the {len(files)} lowest of {len(scored)} files" if len(scored) > len(files) else ""
    return hbar([names[f["file"]] for f in files], [f["score"] for f in files], [score_colour(f["score"]) for f in files],
                title=f"Quality score per file (share of stories with no warning or error{worst})", xlabel="score (0-100)",
                salt="scores", xmax=105, annotate="{:.0f}")

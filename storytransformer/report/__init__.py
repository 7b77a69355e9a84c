"""The backlog health report (one self-contained HTML page) and the size/cost estimate.

Importing this package is cheap: matplotlib, networkx, the embedding model and the
tokenizer load only while a report or an estimate is built.
"""

from __future__ import annotations

__all__ = ["build_report", "render_html", "estimate_backlog"]


def __getattr__(name: str):
    if name == "build_report":
        from .collect import build_report

        return build_report
    if name == "render_html":
        from .page import render_html

        return render_html
    if name == "estimate_backlog":
        from .estimate import estimate_backlog

        return estimate_backlog
    raise AttributeError(name)

"""A rich progress bar on stderr when it is a terminal; nothing otherwise."""

from __future__ import annotations

from contextlib import nullcontext


def stderr_progress(err):
    if not err.isatty():
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(file=err), transient=True)

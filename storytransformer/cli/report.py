"""``storytransformer report PATH... -o report.html``: a self-contained HTML health report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import model_checks


def register(sub) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a backlog's health",
                       description="Write one HTML page (no network needed to view it): findings per rule and file, "
                                   "a quality score per file, a filterable table of findings, near-duplicate clusters "
                                   "with proposed merges, the backlog's size and the cost of a model pass, and what "
                                   "changed since an older snapshot.")
    p.add_argument("paths", nargs="*", default=["."], help="files or directories (default: .)")
    p.add_argument("-o", "--output", type=Path, default=Path("report.html"), help="the HTML file to write (default: report.html)")
    p.add_argument("--config", type=Path, help="configuration file (default: nearest .storytransformer.toml or pyproject.toml)")
    p.add_argument("--compare", type=Path, metavar="OLD",
                   help="an older report (.html), its JSON data, 'check --format json' output, or a directory to check now")
    p.add_argument("--no-semantic", action="store_true", help="skip semantic duplicates and clusters (no embedding model)")
    p.add_argument("--no-model", action="store_true", help="do not load the language model: merges are not ranked")
    p.add_argument("--generate", action="store_true", help="also let the model write its own merge per cluster (slow on a CPU)")
    p.add_argument("--max-merges", type=int, default=None, metavar="N",
                   help="propose merges for the N largest clusters only (default: every cluster)")
    p.add_argument("--model-seconds", type=float, default=120.0, metavar="S",
                   help="time the model may spend ranking merges, largest clusters first (default: 120); the clusters "
                        "it does not reach keep their deterministic grounded merge and say so")
    model_checks.add_arguments(p)  # the same flags as check's
    p.add_argument("--no-estimate", action="store_true", help="leave out the size and cost panel (no tokenizer)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the on-disk caches")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the report's data as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..report.collect import Options, build_report
    from ..report.compare import SnapshotError, compare, read_snapshot
    from ..report.page import embed_json, render_html
    from ..report.progress import stderr_progress
    from ..report.settings import load_for_command

    err = sys.stderr
    if args.max_merges is not None and args.max_merges < 0:
        print("storytransformer report: error: --max-merges must be 0 or more", file=err)
        return 2
    if args.model_seconds < 0:
        print("storytransformer report: error: --model-seconds must be 0 or more", file=err)
        return 2
    if args.model_budget < 1 or args.model_timeout <= 0:
        print("storytransformer report: error: --model-budget and --model-timeout must be positive", file=err)
        return 2
    try:
        thresholds = model_checks.thresholds(args.model_threshold)
    except ValueError as e:
        print(f"storytransformer report: error: {e}", file=err)
        return 2
    loaded = load_for_command("report", args.config, args.paths, err)
    if loaded is None:
        return 2
    config, settings = loaded
    options = Options(semantic=not args.no_semantic, model=not args.no_model, generate=args.generate,
                      max_merges=args.max_merges, model_seconds=args.model_seconds, estimate=not args.no_estimate, use_cache=not args.no_cache,
                      model_checks=args.model_checks, model_check_questions=args.model_budget,
                      model_check_seconds=args.model_timeout, model_check_thresholds=thresholds)

    def warn(message: str) -> None:
        print(f"storytransformer report: warning: {message}", file=err)

    with stderr_progress(err) as progress:
        data = build_report(args.paths, config, options, settings=settings, progress=progress, warn=warn)
        if args.compare is not None:
            try:
                old = read_snapshot(args.compare, lambda d: _check_directory(d, config, options))
            except SnapshotError as e:
                print(f"storytransformer report: error: --compare: {e}", file=err)
                return 2
            data["compare"] = {"old": str(args.compare), **compare(old, data["findings"])}
    try:
        started = time.perf_counter()
        html = render_html(data)
        _write(args.output, html)
        data["timings"]["writing page"] = round(time.perf_counter() - started, 3)  # in the JSON, not in the page
        data["html_bytes"] = len(html.encode("utf-8"))
        if args.json is not None:
            _write(args.json, embed_json(data) + "\n")
    except OSError as e:
        print(f"storytransformer report: error: cannot write {e.filename or args.output}: {e.strerror or e}", file=err)
        return 2
    t = data["totals"]
    print(f"Wrote {args.output}: {t['findings']} findings in {t['stories']} stories in {t['files']} files, "
          f"{_clusters_line(data)}.", file=err)
    return 0


def _clusters_line(data: dict) -> str:
    """"2,043 clusters, every one with a merge proposal (10 ranked by the model)" and the like."""
    summary = data.get("merge_summary")
    n = len(data["clusters"])
    if not summary or not n:
        return f"{n} clusters"
    with_merge, ranked = summary["with_merge"], summary["ranked_by_model"]
    share = "every one" if with_merge == n else f"{with_merge:,}"
    part = summary.get("duplicates_within", 0)
    return (f"{n:,} clusters, {share} with a merge proposal ({ranked:,} ranked by the model, "
            f"{summary['by_kind']['deterministic']:,} deterministic"
            f"{f'; {part:,} merge only the duplicates within their cluster' if part else ''})")


def _write(path: Path, text: str) -> None:
    """Atomically; a new file gets the usual permissions (umask), as a report is meant to be shared."""
    import os

    from ..edits import atomic_write

    new = not path.exists()
    atomic_write(str(path), text)
    if new:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(path, 0o666 & ~umask)


def _check_directory(directory: Path, config, options) -> list[dict]:
    """Findings of an old checkout, checked now with the same configuration (no model, no size)."""
    from dataclasses import replace

    from ..report.collect import build_report

    old = build_report([str(directory)], config, replace(options, model=False, max_merges=0, estimate=False))
    return old["findings"]

"""Speed and memory of `storytransformer check --no-semantic` on a 440,000-word workspace.

Targets (2 cores): cold run <= 10 s, warm run (caches filled) <= 1 s, < 500 MB RSS,
re-check after one story changes <= 20 ms. Prints a table, writes
docs/benchmarks/check.json and .md, and shows the ratio to the previous run.

    python benchmarks/check_bench.py [--stories 20000 --files 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workspace_gen import generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"


def timed_check(workspace: Path, cache: Path) -> tuple[float, float, float]:
    """Wall time, peak RSS of the main process and of the largest process (MB) of one `check`."""
    env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-c",
           "import resource,sys,time;t=time.perf_counter();from storytransformer.cli import main;"
           "rc=main(['check','--no-semantic','-q','--format','json','-o',sys.argv[1],sys.argv[2]]);"
           "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)",
           str(cache / "out.json"), str(workspace)]
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if r.returncode not in (0, 1):
        raise SystemExit(r.stderr)
    _, rss = r.stdout.split()
    # Largest process of the tree so far (the parser worker is a grandchild, reaped by check).
    tree = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, float(rss), tree


def recheck_ms(workspace: Path, repeats: int = 50) -> float:
    """Median time to re-check one file after one of its stories changes (in-process, warm)."""
    from storytransformer.config import Config
    from storytransformer.lint import Linter
    from storytransformer.workspace import Workspace

    ws = Workspace.from_paths([workspace], Config())
    linter = Linter(ws)
    linter.check()
    path = sorted(ws.files)[0]
    text = Path(path).read_text("utf-8")
    times = []
    for i in range(repeats):
        edited = text.replace("I want", f"I want to {i}", 1) if i % 2 else text
        t = time.perf_counter()
        ws.set_text(path, edited)
        linter.check_file(path)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stories", type=int, default=20_000)
    ap.add_argument("--files", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws_dir, cache = Path(tmp) / "ws", Path(tmp) / "cache"
        cache.mkdir()
        words = generate(ws_dir, args.stories, args.files)
        cold, cold_rss, tree_rss = timed_check(ws_dir, cache)
        warm_runs = [timed_check(ws_dir, cache) for _ in range(3)]
        warm, warm_rss = min(w for w, _, _ in warm_runs), max(r for _, r, _ in warm_runs)
        load = os.getloadavg()[0]
        recheck = recheck_ms(ws_dir)
    result = {
        "date": time.strftime("%Y-%m-%d"), "python": platform.python_version(), "cpus": os.cpu_count(),
        "stories": args.stories, "files": args.files, "words": words,
        "load_average_1min": round(load, 2),
        "cold_s": round(cold, 2), "warm_s": round(warm, 2), "peak_rss_mb": round(max(cold_rss, warm_rss)),
        "parser_process_rss_mb": round(tree_rss),
        "recheck_one_story_ms": round(recheck, 2),
        "targets": {"cold_s": 10, "warm_s": 1, "peak_rss_mb": 500, "parser_process_rss_mb": 500,
                    "recheck_one_story_ms": 20},
    }
    previous = json.loads((OUT / "check.json").read_text()) if (OUT / "check.json").exists() else None
    rows = [("cold check (s)", "cold_s"), ("warm check (s)", "warm_s"), ("peak RSS, main process (MB)", "peak_rss_mb"),
            ("peak RSS, largest process incl. parser worker (MB)", "parser_process_rss_mb"),
            ("re-check one story (ms)", "recheck_one_story_ms")]
    lines = [f"# `check --no-semantic` on {words:,} words ({args.stories:,} stories, {args.files} files)", "",
             f"{result['date']}, Python {result['python']}, {result['cpus']} CPUs, "
             f"load average {result['load_average_1min']} at the end (other work slows every figure). "
             "Command: `python benchmarks/check_bench.py`", "",
             "| measure | value | target | vs previous run |", "|---|---:|---:|---:|"]
    for label, key in rows:
        ratio = f"{result[key] / previous[key]:.2f}x" if previous and previous.get(key) else "-"
        lines.append(f"| {label} | {result[key]} | {result['targets'][key]} | {ratio} |")
    table = "\n".join(lines)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "check.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / "check.md").write_text(table + "\n")


if __name__ == "__main__":
    main()

"""`storytransformer report` end to end on a generated 440,000-word workspace: every cluster's merge.

Targets (issue 20, point 5): every cluster gets its grounded merge proposal (deterministic where no
model time is left, said so per cluster) in <= 10 min on 2 CPU cores; with a capable model on a GPU
(the engine's fast path), the model ranks every cluster in <= 3 min.

The report runs in a subprocess, as a user runs it, with a fresh cache directory (cold: the
embeddings, the tokenizer and the run caches are computed), unless ``--warm`` (a first run fills the
caches, the second is measured). Prints a table (stories, clusters, clusters with a merge and by
kind, wall time per step, peak RSS, page size) and writes docs/benchmarks/report.{md,json}
(``--name`` changes the file name, e.g. ``report-cuda`` for a GPU run).

    python benchmarks/report_bench.py                        # 20,000 lines in 200 files, packaged model, 120 s
    python benchmarks/report_bench.py --no-model             # deterministic merges only
    python benchmarks/report_bench.py --stories 2000 --files 20 --name report-small
    python benchmarks/report_bench.py --model Qwen/Qwen2.5-7B-Instruct --device cuda \\
        --model-seconds 180 --name report-cuda             # the GPU figure (fast path on CUDA)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workspace_gen import generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
TARGET_S = 600  # every cluster's merge on 2 CPU cores
TARGET_MODEL_S = 180  # the model's ranking of every cluster on the GPU

RUNNER = ("import json,resource,sys,time;t=time.perf_counter();from storytransformer.cli import main;"
          "rc=main(sys.argv[1:]);wall=time.perf_counter()-t;"
          "print(json.dumps({'rc':rc,'wall_s':wall,'rss_mb':resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024,"
          "'children_rss_mb':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024}))")


def run_report(workspace: Path, work: Path, cache: Path, args) -> dict:
    """One `report` in a subprocess: its data (the JSON it wrote) and its wall time and memory."""
    cmd = ["report", str(workspace), "-o", str(work / "report.html"), "--json", str(work / "report.json"),
           "--model-seconds", str(args.model_seconds)]
    if args.no_model:
        cmd.append("--no-model")
    if args.max_merges is not None:
        cmd += ["--max-merges", str(args.max_merges)]
    if args.model or args.device:
        config = work / "bench.toml"
        lines = ["[engine]"]
        if args.model:
            lines.append(f"model = {json.dumps(args.model)}")
        if args.device:
            lines.append(f"device = {json.dumps(args.device)}")
            lines += ["", "[similarity]", f"device = {json.dumps(args.device)}"]
        config.write_text("\n".join(lines) + "\n", "utf-8")
        cmd += ["--config", str(config)]
    env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", RUNNER, *cmd], capture_output=True, text=True, env=env, cwd=ROOT)
    outer = time.perf_counter() - started
    if r.returncode != 0 or not r.stdout.strip():
        raise SystemExit(f"report failed ({r.returncode}):\n{r.stderr[-4000:]}")
    run = json.loads(r.stdout.strip().splitlines()[-1])
    if run["rc"] != 0:
        raise SystemExit(f"report exited {run['rc']}:\n{r.stderr[-4000:]}")
    run["process_s"] = outer  # with the interpreter's start and imports
    run["stderr_tail"] = r.stderr.strip().splitlines()[-3:]
    run["data"] = json.loads((work / "report.json").read_text("utf-8"))
    return run


def summarise(run: dict, args, words: int) -> dict:
    data = run["data"]
    summary = data.get("merge_summary") or {}
    return {
        "date": time.strftime("%Y-%m-%d"), "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "command": " ".join(sys.argv[1:]) or "(defaults)",
        "cache": "warm" if args.warm else "cold",
        "model": None if args.no_model else (data.get("merges") or {}).get("ranked_by"),
        "model_seconds": args.model_seconds,
        "lines": args.stories, "files": data["totals"]["files"], "stories": data["totals"]["stories"],
        "words": data["totals"]["words"], "generated_words": words, "findings": data["totals"]["findings"],
        "clusters": len(data["clusters"]), "clusters_with_merge": summary.get("with_merge", 0),
        "by_kind": summary.get("by_kind", {}), "ranked_by_model": summary.get("ranked_by_model", 0),
        "duplicates_within": summary.get("duplicates_within", 0), "wording_set_aside": summary.get("wording_set_aside", 0),
        "wall_s": round(run["process_s"], 1), "steps_s": {k: round(v, 1) for k, v in data.get("timings", {}).items()},
        "peak_rss_mb": round(max(run["rss_mb"], run["children_rss_mb"])),
        "html_bytes": data.get("html_bytes"), "json_bytes": (Path(args.work) / "report.json").stat().st_size,
        "targets": {"wall_s": TARGET_S, "model_ranks_every_cluster_s": TARGET_MODEL_S},
        # the last line names the page it wrote: a temporary path, shown as its file name only
        "closing_line": (run["stderr_tail"][-1] if run["stderr_tail"] else "").replace(
            str(Path(args.work) / "report.html"), "report.html"),
    }


def table(r: dict) -> str:
    kinds = r["by_kind"]
    rows = [
        ("stories (files)", f"{r['stories']:,} ({r['files']})"),
        ("words", f"{r['words']:,}"),
        ("findings", f"{r['findings']:,}"),
        ("clusters", f"{r['clusters']:,}"),
        ("clusters with a merge proposal", f"{r['clusters_with_merge']:,}"),
        ("  ranked by the model", f"{kinds.get('model', 0):,}"),
        ("  deterministic (no model time left / no model)", f"{kinds.get('deterministic', 0):,}"),
        ("  of them: only the duplicates within the cluster", f"{r.get('duplicates_within', 0):,}"),
        ("  of them: a duplicate's wording set aside (named)", f"{r.get('wording_set_aside', 0):,}"),
        ("  no grounded merge (each says why)", f"{kinds.get('none', 0):,}"),
        ("  not proposed (--max-merges)", f"{kinds.get('not proposed', 0):,}"),
        ("wall time, whole command (s)", f"{r['wall_s']:,} (target {TARGET_S})"),
        *((f"  {step} (s)", f"{sec:,}") for step, sec in r["steps_s"].items()),
        ("peak RSS (MB)", f"{r['peak_rss_mb']:,}"),
        ("HTML page (bytes)", f"{r['html_bytes']:,}"),
        ("JSON data (bytes)", f"{r['json_bytes']:,}"),
    ]
    head = (f"# `storytransformer report` on {r['words']:,} words ({r['stories']:,} stories, {r['files']} files)\n\n"
            f"{r['date']}, Python {r['python']}, {r['cpus']} CPUs, load average {r['load_average_1min']} at the end "
            f"(the machine is shared: other work slows every figure). Cache: {r['cache']}. Model: "
            f"{r['model'] or 'none (--no-model)'}, --model-seconds {r['model_seconds']:g}. "
            f"Command: `{('python benchmarks/report_bench.py ' + ('' if r['command'] == '(defaults)' else r['command'])).strip()}`"
            + "\n\n| measure | value |\n|---|---:|\n")
    return head + "\n".join(f"| {k} | {v} |" for k, v in rows) + f"\n\nThe command's last line: `{r['closing_line']}`\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stories", type=int, default=20_000, help="lines to generate (default 20,000: 440k words)")
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--workspace", type=Path, help="generate into (or reuse) this directory instead of a temporary one")
    ap.add_argument("--model", help="engine.model for the ranking (a directory, .gguf or hub id; default: the packaged one)")
    ap.add_argument("--device", help="engine.device and similarity.device (e.g. cuda)")
    ap.add_argument("--no-model", action="store_true", help="deterministic merges only (report --no-model)")
    ap.add_argument("--model-seconds", type=float, default=120.0, help="report --model-seconds (default 120)")
    ap.add_argument("--max-merges", type=int, help="report --max-merges (default: every cluster)")
    ap.add_argument("--warm", action="store_true", help="measure a second run (caches filled by the first)")
    ap.add_argument("--name", default="report", help="write docs/benchmarks/NAME.{md,json} (default: report)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        workspace = args.workspace or tmp / "ws"
        if workspace.is_dir() and any(workspace.glob("*.txt")):
            words = sum(len(line.split()) for p in workspace.glob("*.txt") for line in p.read_text("utf-8").splitlines())
        else:
            words = generate(workspace, args.stories, args.files)
        cache = tmp / "cache"
        cache.mkdir()
        args.work = tmp
        if args.warm:
            run_report(workspace, tmp, cache, args)
        result = summarise(run_report(workspace, tmp, cache, args), args, words)
    text = table(result)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / f"{args.name}.md").write_text(text)


if __name__ == "__main__":
    main()

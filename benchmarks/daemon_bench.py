"""Daemon latency and throughput on the local socket.

Starts a real daemon (``storytransformer daemon run``) in a temporary runtime
directory and measures, with real clients over the Unix socket:

* findings round trip, one client, one request in flight (p50/p99);
* findings from N concurrent clients, each a separate process (throughput, p50/p99, errors);
* an edit: ``document/overlay`` + ``findings`` (the file is re-linted);
* the watcher: a file written outside the editor -> ``index/changed`` at a client;
* a burst: 5,000 files appear at once -> all in the workspace, and how many notifications.

The workspace is recombined from the real backlogs at run time (nothing is committed);
``--synthetic`` uses generated stories instead. Findings are the deterministic ones
(``semantic: false``); semantic findings come from a cache per workspace generation.
Results: docs/benchmarks/daemon.json and daemon.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from storytransformer_server.daemon import protocol as P
from storytransformer_server.daemon.client import DaemonClient

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))] if s else float("nan")


def make_workspace(target: Path, stories: int, files: int, synthetic: bool) -> str:
    if not synthetic:
        try:
            from workspace_gen import generate

            words = generate(target, stories=stories, files=files)
            return f"{stories} stories ({words} words) in {files} files recombined from the real backlogs"
        except SystemExit as e:
            print(f"{e}; using synthetic stories", file=sys.stderr)
    target.mkdir(parents=True, exist_ok=True)
    per = stories // files
    for f in range(files):
        lines = [f"As a user {f}-{i}, I want to open report {i} quickly, so that I can check item {i}."
                 for i in range(per)]
        (target / f"backlog{f:03d}.txt").write_text("\n".join(lines) + "\n", "utf-8")
    return f"{stories} synthetic stories in {files} files"


# -- clients in their own processes (so client-side Python does not share one core's loop) --
def _client_proc(runtime: str, path: str, seconds: float, in_flight: int, start_at: float, out: mp.Queue) -> None:
    async def go():
        client = await DaemonClient.connect(spawn=False, runtime_dir=runtime, client_name="bench")
        await client.request("workspace/register", {"root": os.path.dirname(path)}, timeout=600)
        lat: list[float] = []
        errors = 0
        while time.time() < start_at:
            await asyncio.sleep(0.001)
        end = time.perf_counter() + seconds

        async def worker():
            nonlocal errors
            while time.perf_counter() < end:
                t = time.perf_counter()
                try:
                    await client.request("findings", {"path": path, "semantic": False}, timeout=10)
                    lat.append(time.perf_counter() - t)
                except P.DaemonError:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(in_flight)))
        await client.close()
        return lat, errors

    out.put(asyncio.run(go()))


def concurrent_clients(runtime: str, path: str, clients: int, seconds: float, in_flight: int) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start_at = time.time() + 5.0  # every process connected before the clock starts
    procs = [ctx.Process(target=_client_proc, args=(runtime, path, seconds, in_flight, start_at, q)) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    lat = [x for r, _ in results for x in r]
    errors = sum(e for _, e in results)
    return {"clients": clients, "in_flight_per_client": in_flight, "seconds": seconds, "requests": len(lat),
            "errors": errors, "requests_per_s": round(len(lat) / seconds, 1),
            "p50_ms": round(percentile(lat, 50) * 1000, 3), "p99_ms": round(percentile(lat, 99) * 1000, 3)}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


async def single_client(runtime: str, root: Path, path: str, n: int, daemon_pid: int) -> dict:
    client = await DaemonClient.connect(spawn=False, runtime_dir=runtime, client_name="bench")
    out: dict = {}
    try:
        await client.request("workspace/register", {"root": str(root)}, timeout=600)
        for _ in range(50):  # warm up (cache, parser)
            await client.request("findings", {"path": path, "semantic": False})
        lat = []
        cpu0 = cpu_seconds(daemon_pid)
        for _ in range(n):
            t = time.perf_counter()
            answer = await client.request("findings", {"path": path, "semantic": False})
            lat.append(time.perf_counter() - t)
        cpu1 = cpu_seconds(daemon_pid)
        out["daemon_cpu_per_findings_us"] = round((cpu1 - cpu0) / n * 1e6) if cpu0 is not None and cpu1 is not None else None
        out["findings_per_file"] = len(answer["findings"])
        out["findings_p50_ms"] = round(percentile(lat, 50) * 1000, 3)
        out["findings_p99_ms"] = round(percentile(lat, 99) * 1000, 3)
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            await client.request("status")
            lat.append(time.perf_counter() - t)
        out["status_p50_ms"] = round(percentile(lat, 50) * 1000, 3)
        # an edit: overlay the file with one story changed, then ask for its findings (re-lint)
        text = Path(path).read_text("utf-8").splitlines()
        lat = []
        for i in range(min(n, 200)):
            lines = list(text)
            lines[0] = f"As a user, I want to edit line {i} quickly, so that it changes."
            t = time.perf_counter()
            await client.request("document/overlay", {"path": path, "text": "\n".join(lines) + "\n", "version": i + 1})
            await client.request("findings", {"path": path, "semantic": False})
            lat.append(time.perf_counter() - t)
        await client.request("document/close", {"path": path})
        out["edit_then_findings_p50_ms"] = round(percentile(lat, 50) * 1000, 3)
        out["edit_then_findings_p99_ms"] = round(percentile(lat, 99) * 1000, 3)
    finally:
        await client.close()
    return out


async def watcher_latency(runtime: str, root: Path, samples: int) -> dict:
    client = await DaemonClient.connect(spawn=False, runtime_dir=runtime, client_name="bench")
    seen: dict[str, float] = {}
    got = asyncio.Event()

    def on_change(params):
        now = time.perf_counter()
        for p in params.get("paths", []):
            seen.setdefault(p, now)
        got.set()

    client.on_notification(P.INDEX_CHANGED, on_change)
    lat = []
    try:
        await client.request("workspace/register", {"root": str(root)})
        target = root / "watched"
        target.mkdir(exist_ok=True)
        for i in range(samples):
            f = target / f"w{i}.txt"
            t = time.perf_counter()
            f.write_text(f"As a tester {i}, I want to change a file, so that the daemon sees it.\n", "utf-8")
            deadline = time.perf_counter() + 10
            while str(f) not in seen and time.perf_counter() < deadline:
                got.clear()
                try:
                    await asyncio.wait_for(got.wait(), 1)
                except asyncio.TimeoutError:
                    pass
            if str(f) in seen:
                lat.append(seen[str(f)] - t)
            await asyncio.sleep(0.05)
        # a burst: a checkout that brings 5,000 files
        notes_before = len(seen)
        count = {"n": 0}
        client.on_notification(P.INDEX_CHANGED, lambda params: count.__setitem__("n", count["n"] + 1))
        burst = root / "burst"
        burst.mkdir()
        files_before = (await client.request("status"))["roots"][0]["files"]
        t = time.perf_counter()
        for i in range(5000):
            (burst / f"b{i:04d}.txt").write_text(f"As a user {i}, I want item {i}, so that I have it.\n", "utf-8")
        written = time.perf_counter() - t
        while (await client.request("status"))["roots"][0]["files"] < files_before + 5000:
            await asyncio.sleep(0.02)
        burst_s = time.perf_counter() - t
        del notes_before
    finally:
        await client.close()
    return {"watch_samples": len(lat), "watch_p50_ms": round(percentile(lat, 50) * 1000, 1),
            "watch_p99_ms": round(percentile(lat, 99) * 1000, 1), "watch_max_ms": round(max(lat) * 1000, 1),
            "burst_files": 5000, "burst_write_s": round(written, 2), "burst_all_loaded_s": round(burst_s, 2),
            "burst_notifications": count["n"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stories", type=int, default=2000)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--repeat", type=int, default=3, help="runs per concurrency setting (the median is reported)")
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks")
    ap.add_argument("--out", type=Path, default=OUT, help="where daemon.json and daemon.md go")
    ap.add_argument("--name", default="daemon", help="file name stem of the results")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="daemon-bench-"))
    runtime, ws = tmp / "rt", tmp / "ws"
    described = make_workspace(ws, args.stories, args.files, args.synthetic)
    env = dict(os.environ, STORYTRANSFORMER_RUNTIME_DIR=str(runtime), STORYTRANSFORMER_LOG_DIR=str(tmp / "logs"),
               STORYTRANSFORMER_CACHE_DIR=str(tmp / "cache"), STORYTRANSFORMER_DAEMON_CONFIG=str(tmp / "none.toml"))
    os.environ.update({k: env[k] for k in ("STORYTRANSFORMER_LOG_DIR", "STORYTRANSFORMER_DAEMON_CONFIG")})
    daemon = subprocess.Popen([sys.executable, "-m", "storytransformer", "daemon", "run", "--quiet"], env=env)
    results: dict = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                     "python": platform.python_version(), "workspace": described,
                     "load_average_at_start": round(os.getloadavg()[0], 2)}
    try:
        deadline = time.time() + 30
        while not (runtime / "daemon.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        files = sorted(ws.glob("*.txt"))
        path = str(files[0])

        async def register():
            c = await DaemonClient.connect(spawn=False, runtime_dir=runtime)
            t = time.perf_counter()
            summary = await c.request("workspace/register", {"root": str(ws)}, timeout=600)
            took = time.perf_counter() - t
            await c.close()
            return summary, took

        summary, took = asyncio.run(register())
        results["register_s"] = round(took, 3)
        results["stories_in_file"] = len(Path(path).read_text("utf-8").splitlines())
        results.update(asyncio.run(single_client(str(runtime), ws, path, args.requests, daemon.pid)))
        results["concurrent"] = []
        configs = [(int(x), 1) for x in args.clients.split(",")] + [(4, 8)]
        for n, in_flight in configs:  # the median of --repeat runs: the machine may be busy with other work
            runs = sorted((concurrent_clients(str(runtime), path, n, args.seconds, in_flight) for _ in range(args.repeat)),
                          key=lambda r: r["requests_per_s"])
            median = dict(runs[len(runs) // 2])
            median["runs_requests_per_s"] = [r["requests_per_s"] for r in runs]
            median["errors"] = sum(r["errors"] for r in runs)
            results["concurrent"].append(median)
        results.update(asyncio.run(watcher_latency(str(runtime), ws, 50)))
        rss = None
        try:
            for line in Path(f"/proc/{daemon.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    rss = int(line.split()[1]) / 1024
        except OSError:
            pass
        results["daemon_peak_rss_mb"] = round(rss, 1) if rss else None
    finally:
        daemon.terminate()
        daemon.wait(30)

    rows = [
        ("register the workspace (read + parse)", f"{results['register_s'] * 1000:.0f} ms", ""),
        (f"findings round trip, 1 client ({results['stories_in_file']} stories, {results['findings_per_file']} findings) p50",
         f"{results['findings_p50_ms']:.2f} ms", "2 ms"),
        ("findings round trip, 1 client p99", f"{results['findings_p99_ms']:.2f} ms", ""),
        ("daemon CPU time per findings request (independent of other load)",
         f"{results['daemon_cpu_per_findings_us']} µs", ""),
        ("status round trip p50", f"{results['status_p50_ms']:.2f} ms", ""),
        ("overlay edit + findings (re-lint one file) p50", f"{results['edit_then_findings_p50_ms']:.2f} ms", ""),
        ("overlay edit + findings p99", f"{results['edit_then_findings_p99_ms']:.2f} ms", ""),
    ]
    for c in results["concurrent"]:
        rows.append((f"{c['clients']} clients x {c['in_flight_per_client']} in flight: throughput (median of "
                     f"{len(c['runs_requests_per_s'])} runs: {', '.join(f'{x:.0f}' for x in c['runs_requests_per_s'])}), errors",
                     f"{c['requests_per_s']:.0f} req/s, {c['errors']} errors",
                     "1,000 req/s from 4 clients, 0 errors" if c["clients"] == 4 else ""))
        rows.append((f"{c['clients']} clients x {c['in_flight_per_client']} in flight: p50 / p99",
                     f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f} ms", ""))
    rows += [
        (f"outside file change -> index/changed p50 ({results['watch_samples']} samples)", f"{results['watch_p50_ms']:.0f} ms", "1 s"),
        ("outside file change -> index/changed p99 / max", f"{results['watch_p99_ms']:.0f} / {results['watch_max_ms']:.0f} ms", "1 s"),
        ("burst of 5,000 new files: all in the workspace", f"{results['burst_all_loaded_s']:.2f} s (writing took {results['burst_write_s']:.2f} s)", ""),
        ("burst of 5,000 new files: index/changed notifications", str(results["burst_notifications"]), "coalesced"),
        ("daemon peak RSS", f"{results['daemon_peak_rss_mb']} MB", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{results['workspace']}; {results['machine']}, Python {results['python']}, "
          f"load average {results['load_average_at_start']}\n")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>34}  {target}")
    if not args.no_write:
        out_dir = args.out
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n", "utf-8")
        md = [
            "# Daemon latency and throughput", "",
            f"`python benchmarks/daemon_bench.py` on {results['date']}, {results['machine']}, Python {results['python']}: "
            f"{results['workspace']}. Real daemon, real clients over the Unix socket; concurrent clients are separate "
            f"processes, each keeping the stated number of requests in flight for {args.seconds:g} s, {args.repeat} times "
            "(median shown; errors summed over all runs). Findings are the "
            "deterministic ones (cached per workspace generation; the edit rows re-lint). The daemon and the clients "
            f"share the machine's CPUs (load average {results['load_average_at_start']} at the start"
            + ("; other work was running, so the tails are pessimistic)." if results["load_average_at_start"] > (os.cpu_count() or 1)
               else ")."), "",
            "| measure | value | target |", "|---|---|---|",
            *[f"| {n} | {v} | {t} |" for n, v, t in rows], "",
        ]
        (out_dir / f"{args.name}.md").write_text("\n".join(md), "utf-8")
        print(f"\nwrote {out_dir / (args.name + '.json')} and {out_dir / (args.name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

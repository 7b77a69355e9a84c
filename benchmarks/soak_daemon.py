"""The daemon under faults: ``kill -9`` at random moments while several client processes send 1,000 requests.

Each client is a separate process with a ``DaemonClient`` that connects with
``spawn=True``: when the daemon dies under it, the request in flight fails with
``CONNECTION_LOST`` and the client reconnects, starting a new daemon over the stale
socket. Counts requests served, requests failed (by error code), daemons killed and
started, wrong answers (findings that differ from the first ones seen), and requests
that outlived their deadline (must be 0). The daemon is killed after a random number
(10-150) of requests served since the last kill, at whatever point it has reached. A last phase without faults samples the
surviving daemon's resident memory at its start and end.

    python benchmarks/soak_daemon.py            # 1,000 requests, 4 clients; docs/benchmarks/soak_daemon.json and .md
    python benchmarks/soak_daemon.py --quick    # 300 requests
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
BACKLOGS = ROOT.parent / "shared" / "data" / "backlogs" / "dalpiaz"
SYNTHETIC = (
    "As a visitor, I want to search the catalogue, so that I find books.\n"
    "I want to export the monthly reports quickly.\n"
    "As a librarian, I want to add and remove titles, so that visitors can borrow them.\n"
)


def story_text(n: int = 60) -> str:
    """``n`` story lines from one real backlog (read at run time), else a few synthetic ones."""
    files = sorted(BACKLOGS.glob("*.txt")) if BACKLOGS.is_dir() else []
    if not files:
        return SYNTHETIC
    lines = [ln for ln in files[0].read_text("utf-8", errors="replace").splitlines() if ln.strip()]
    return "\n".join(lines[:n]) + "\n"


def daemon_pid(runtime: Path) -> int | None:
    """The pid of the daemon holding the lock of ``runtime`` (checked against /proc), or None."""
    try:
        pid = int((runtime / "daemon.lock").read_text().split()[0])
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    if b"daemon" in cmd and b"run" in cmd:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return None if state == "Z" else pid
    return None


def rss_kib(pid: int | None) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, TypeError):
        pass
    return 0


def daemon_env(base: Path) -> dict:
    env = {
        "STORYTRANSFORMER_RUNTIME_DIR": str(base / "rt"),
        "STORYTRANSFORMER_LOG_DIR": str(base / "logs"),
        "STORYTRANSFORMER_CACHE_DIR": str(base / "cache"),
        "STORYTRANSFORMER_DAEMON_CONFIG": str(base / "no-daemon.toml"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")]),
    }
    return env


async def client_loop(idx: int, n: int, runtime: str, root: str, timeout: float, rate: float, seed: int,
                      served=None) -> dict:
    """``n`` requests at ``rate`` per second; reconnects (spawning a daemon) whenever the connection is lost."""
    from storytransformer_server.daemon.client import DaemonClient, DaemonError

    rng = random.Random(seed)
    shared = os.path.join(root, "stories", "backlog.txt")
    own = os.path.join(root, "stories", f"client-{idx}.txt")
    stats: dict = {"ok": 0, "failed": Counter(), "connects": 0, "connect_failures": 0, "wrong": 0,
                   "outlived_deadline": 0, "max_request_s": 0.0, "max_connect_s": 0.0}
    expected: list | None = None
    client = None
    connected_at = 0.0
    done, version = 0, 0
    t_start = time.monotonic()
    while done < n:
        if client is None or client.closed:
            t0 = time.monotonic()
            try:
                client = await DaemonClient.connect(spawn=True, runtime_dir=runtime, client_name=f"soak-{idx}")
                await client.request("workspace/register", {"root": root}, timeout=10)
                stats["connects"] += 1
                connected_at = time.monotonic()
            except DaemonError as e:
                stats["connect_failures"] += 1
                stats.setdefault("connect_errors", Counter())[str(e.code)] += 1
                client = None
                await asyncio.sleep(0.1)
                continue
            finally:
                stats["max_connect_s"] = max(stats["max_connect_s"], time.monotonic() - t0)
        kind = rng.random()
        t0 = time.monotonic()
        try:
            if kind < 0.8:
                answer = await client.request("findings", {"path": shared, "semantic": False}, timeout=timeout)
                got = sorted((f["code"], f["range"]["start"]["line"]) for f in answer["findings"])
                if expected is None:
                    expected = got
                elif got != expected:
                    stats["wrong"] += 1
            elif kind < 0.9:
                version += 1
                await client.request("document/overlay", {"path": own, "version": version,
                                                          "text": f"As a tester, I want step {version}.\n"}, timeout=timeout)
            else:
                await client.request("status", {}, timeout=timeout)
            stats["ok"] += 1
            if served is not None:
                with served.get_lock():
                    served.value += 1
        except DaemonError as e:
            stats["failed"][str(e.code)] += 1
            if e.code == -32001:  # how long after (re)connecting: a fresh daemon loads the parser first
                stats.setdefault("deadline_s_after_connect", []).append(round(t0 - connected_at, 2))
        elapsed = time.monotonic() - t0
        stats["max_request_s"] = max(stats["max_request_s"], elapsed)
        if elapsed > timeout + 0.5:  # the client's own timer plus scheduling slack
            stats["outlived_deadline"] += 1
        done += 1
        await asyncio.sleep(max(0.0, t_start + done / rate - time.monotonic()))
    if client is not None:
        await client.close()
    stats["failed"] = dict(stats["failed"])
    stats["connect_errors"] = dict(stats.get("connect_errors", {}))
    return stats


def _client_process(args, served, queue) -> None:
    queue.put(asyncio.run(client_loop(*args, served=served)))


def run(total: int, clients: int, rate_per_client: float, timeout: float, kill_between: tuple[int, int] | None,
        steady_requests: int, seed: int = 3) -> dict:
    with tempfile.TemporaryDirectory(prefix="st-soak-daemon-") as tmp:
        base = Path(tmp)
        root = base / "ws"
        (root / "stories").mkdir(parents=True)
        (root / "stories" / "backlog.txt").write_text(story_text(), "utf-8")
        env = daemon_env(base)
        saved = dict(os.environ)
        os.environ.update(env)  # the clients (and the daemons they spawn) inherit it
        runtime = base / "rt"
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        served = ctx.Value("i", 0)
        per = total // clients
        procs = [ctx.Process(target=_client_process, args=((i, per, str(runtime), str(root), timeout,
                                                           rate_per_client, seed + i), served, queue)) for i in range(clients)]
        t0 = time.monotonic()
        for p in procs:
            p.start()
        rng = random.Random(seed)
        kills, pids_seen = 0, set()
        next_kill = rng.randint(*kill_between) if kill_between else None
        while any(p.is_alive() for p in procs):
            pid = daemon_pid(runtime)  # wait for a daemon that serves, then kill it at a random moment
            if next_kill is None or served.value < next_kill or pid is None:
                time.sleep(0.005)
                continue
            if daemon_pid(runtime) == pid:
                pids_seen.add(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
                next_kill = served.value + rng.randint(*kill_between)
        results = [queue.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(10)
        fault_seconds = time.monotonic() - t0
        # a last phase without faults: is the surviving (or a fresh) daemon serving, and is its memory flat?
        # (a warm-up first, with a long deadline: a freshly spawned daemon loads the parser on its first findings)
        asyncio.run(client_loop(97, 3, str(runtime), str(root), 120.0, 10.0, seed))
        steady = asyncio.run(client_loop(99, steady_requests, str(runtime), str(root), timeout, 200.0, seed))
        pid = daemon_pid(runtime)
        rss_start = rss_kib(pid)
        steady2 = asyncio.run(client_loop(98, steady_requests, str(runtime), str(root), timeout, 200.0, seed + 1))
        rss_end = rss_kib(daemon_pid(runtime))
        pids_seen.add(pid)
        stop = subprocess.run([sys.executable, "-m", "storytransformer", "daemon", "stop"], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=60)
        deadline = time.monotonic() + 15  # ``stop`` returns once the socket is gone; the process ends soon after
        while (leftover := daemon_pid(runtime)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if leftover:
            print(f"daemon {leftover} still running after stop: {stop.stdout} {stop.stderr}", file=sys.stderr)
        if leftover:
            os.kill(leftover, signal.SIGKILL)
        os.environ.clear()
        os.environ.update(saved)
    failed: Counter = Counter()
    for r in results:
        failed.update(r["failed"])
    return {
        "clients": clients, "requests": per * clients, "seconds": round(fault_seconds, 1),
        "daemons_killed": kills, "daemons_seen": len(pids_seen - {None}),
        "served": sum(r["ok"] for r in results), "failed": dict(failed), "failed_total": sum(failed.values()),
        "reconnects": sum(r["connects"] for r in results) - clients,
        "connect_failures": sum(r["connect_failures"] for r in results),
        "wrong_answers": sum(r["wrong"] for r in results),
        "deadline_failures_s_after_connect": sorted(x for r in results for x in r.get("deadline_s_after_connect", [])),
        "outlived_deadline": sum(r["outlived_deadline"] for r in results),
        "deadline_s": timeout, "max_request_s": round(max(r["max_request_s"] for r in results), 3),
        "max_connect_s": round(max(r["max_connect_s"] for r in results), 2),
        "steady": {"requests": 2 * steady_requests, "served": steady["ok"] + steady2["ok"],
                   "failed": sum(steady["failed"].values()) + sum(steady2["failed"].values()),
                   "rss_kib_start": rss_start, "rss_kib_end": rss_end},
        "daemon_left_running": bool(leftover),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rate", type=float, default=25.0, help="requests per second per client")
    ap.add_argument("--timeout", type=float, default=2.0, help="each request's deadline, seconds")
    ap.add_argument("--steady", type=int, default=2000, help="requests in each half of the fault-free phase")
    ap.add_argument("--quick", action="store_true", help="300 requests, 500 steady")
    ap.add_argument("--no-kill", action="store_true", help="a control run without faults")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    total, steady = (300, 500) if args.quick else (args.requests, args.steady)
    result = run(total, args.clients, args.rate, args.timeout, None if args.no_kill else (10, 150), steady)
    result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    s = result["steady"]
    rows = [
        ("requests sent (kill phase)", f"{result['requests']:,} from {result['clients']} client processes",
         f"{result['seconds']} s"),
        ("daemons killed with SIGKILL", result["daemons_killed"], f"{result['daemons_seen']} daemon processes served"),
        ("requests served", f"{result['served']:,}", f"{result['wrong_answers']} wrong answers"),
        ("requests failed", result["failed_total"], ", ".join(f"{k}: {v}" for k, v in sorted(result["failed"].items())) or "-"),
        ("reconnects (spawn=True)", result["reconnects"], f"longest reconnect {result['max_connect_s']} s; "
                                                          f"{result['connect_failures']} failed attempts"),
        ("requests past their deadline", result["outlived_deadline"],
         f"deadline {result['deadline_s']} s, longest request {result['max_request_s']} s"),
        ("fault-free phase", f"{s['served']:,} of {s['requests']:,} served", f"{s['failed']} failed"),
        ("daemon RSS (KiB) start/end of fault-free phase", f"{s['rss_kib_start']:,} / {s['rss_kib_end']:,}", ""),
    ]
    md = ["| check | figure | note |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    print("\n".join(md))
    ok = (result["outlived_deadline"] == 0 and result["wrong_answers"] == 0 and s["failed"] == 0
          and result["served"] + result["failed_total"] == result["requests"] and not result["daemon_left_running"])
    if not args.no_write:
        name = "soak_daemon_quick" if args.quick else "soak_daemon"
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        (OUT / f"{name}.md").write_text(f"# Daemon fault soak\n\n`python benchmarks/soak_daemon.py{' --quick' if args.quick else ''}`"
                                        "\n\nFailed requests are the ones in flight when their daemon was killed "
                                        "(`-32010` connection lost) or that were sent while it went down; each client "
                                        "reconnected and went on.\n\n" + "\n".join(md) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

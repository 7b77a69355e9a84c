"""Language server latency on a 20,000-story workspace: didChange -> publishDiagnostics, and the initial scan.

Starts the real server (`storytransformer lsp`) over stdio with pygls' client,
debounce 0 (the delay is not counted), and prints p50/p95/p99. Results go to
docs/benchmarks/lsp.json and lsp.md. Needs the real backlogs next to the project
(the workspace is recombined from them at run time; nothing is committed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workspace_gen import generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def run(ws_dir: Path, files: int, changes: int) -> dict:
    client = LanguageClient("lsp-bench", "1")
    published: dict[str, tuple[int | None, float]] = {}
    arrived = asyncio.Event()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_publish(params: types.PublishDiagnosticsParams) -> None:
        published[params.uri] = (params.version, time.perf_counter())
        arrived.set()

    @client.feature(types.WORKSPACE_CONFIGURATION)
    def on_configuration(params):
        return [None for _ in params.items]

    async def wait(cond, timeout: float = 120.0) -> None:
        end = time.perf_counter() + timeout
        while not cond():
            arrived.clear()
            left = end - time.perf_counter()
            if left <= 0:
                raise SystemExit("timed out waiting for diagnostics")
            try:
                await asyncio.wait_for(arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    env = {**os.environ, "XDG_RUNTIME_DIR": tempfile.mkdtemp(prefix="st-lsp-bench-"),
           "STORYTRANSFORMER_CACHE_DIR": str(ws_dir.parent / "cache")}
    await client.start_io(sys.executable, "-m", "storytransformer", "lsp", "--log-level", "WARNING", env=env)
    t0 = time.perf_counter()
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=from_fs_path(str(ws_dir)),
        workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(ws_dir)), name="bench")],
        initialization_options={"debounceMs": 0, "daemon": {"enabled": False}}))
    client.initialized(types.InitializedParams())
    # the user opens a file while the workspace is being scanned
    files_list = sorted(ws_dir.glob("*.txt"))
    path = files_list[len(files_list) // 2]
    uri = from_fs_path(str(path))
    lines = path.read_text("utf-8").splitlines()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="plaintext", version=1, text="\n".join(lines) + "\n")))
    await wait(lambda: published.get(uri, (None,))[0] == 1)
    open_file_s = time.perf_counter() - t0
    await wait(lambda: len(published) >= files)
    initial_s = time.perf_counter() - t0

    latencies = [0.0] if not changes else []
    for i in range(changes):
        version = i + 2
        line = (i * 7) % len(lines)
        old = lines[line]
        new = ("As a tester, I want to check release " + str(i) + ", so that it ships.") if i % 2 else old
        start = time.perf_counter()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(line, 0), types.Position(line, len(old))), text=new)]))
        lines[line] = new
        await wait(lambda: published.get(uri, (None,))[0] == version)
        latencies.append((published[uri][1] - start) * 1000)
    rss = peak_rss_mb(client._server.pid) if client._server else None
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {"initial_diagnostics_s": round(initial_s, 2), "open_file_diagnostics_s": round(open_file_s, 2),
            "files": len(files_list), "changes": changes,
            "change_to_publish_ms": {"p50": round(percentile(latencies, 50), 2),
                                     "p95": round(percentile(latencies, 95), 2),
                                     "p99": round(percentile(latencies, 99), 2),
                                     "mean": round(statistics.fmean(latencies), 2),
                                     "max": round(max(latencies), 2)},
            "server_peak_rss_mb": round(rss, 1) if rss else None}


def core_alone(ws_dir: Path, changes: int) -> dict:
    """The same work without LSP, in this process: what the server's own overhead is added to."""
    from storytransformer_server.lsp.documents import CoreState

    core = CoreState()
    t = time.perf_counter()
    core.scan([str(ws_dir)], {})
    scan_s = time.perf_counter() - t
    files = sorted(core.workspace.files)
    path = files[len(files) // 2]
    lines = Path(path).read_text("utf-8").splitlines()
    times = []
    for i in range(changes):
        line = (i * 7) % len(lines)
        if i % 2:
            lines[line] = "As a tester, I want to check release " + str(i) + ", so that it ships."
        t = time.perf_counter()
        core.update(path, i + 2, "\n".join(lines) + "\n")
        times.append((time.perf_counter() - t) * 1000)
    return {"scan_and_check_s": round(scan_s, 2),
            "recheck_file_ms": {"p50": round(percentile(times, 50), 2), "p95": round(percentile(times, 95), 2)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stories", type=int, default=20_000)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--changes", type=int, default=300)
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws_dir = Path(tmp) / "ws"
        words = generate(ws_dir, args.stories, args.files)
        result = asyncio.run(run(ws_dir, args.files, args.changes))  # cold: empty caches
        warm = asyncio.run(run(ws_dir, args.files, 0))  # a restart: the caches the first run saved
        result["initial_diagnostics_warm_s"] = warm["initial_diagnostics_s"]
        os.environ["STORYTRANSFORMER_CACHE_DIR"] = str(Path(tmp) / "cache-core")
        result["core_alone"] = core_alone(ws_dir, args.changes)
    result.update(stories=args.stories, words=words, date=time.strftime("%Y-%m-%d"),
                  load_average_1m=round(os.getloadavg()[0], 2),
                  machine=f"{platform.machine()}, {os.cpu_count()} CPUs", python=platform.python_version())
    previous = None
    if (OUT / "lsp.json").exists():
        try:
            previous = json.loads((OUT / "lsp.json").read_text("utf-8"))
        except ValueError:
            previous = None
    c = result["change_to_publish_ms"]
    rows = [("initial diagnostics, whole workspace, cold", f"{result['initial_diagnostics_s']:.2f} s", "10 s"),
            ("initial diagnostics, whole workspace, warm caches", f"{result['initial_diagnostics_warm_s']:.2f} s", ""),
            ("diagnostics of a file opened during the scan", f"{result['open_file_diagnostics_s']:.2f} s", ""),
            ("didChange -> publishDiagnostics p50", f"{c['p50']:.1f} ms", ""),
            ("didChange -> publishDiagnostics p95", f"{c['p95']:.1f} ms", "50 ms"),
            ("didChange -> publishDiagnostics p99", f"{c['p99']:.1f} ms", ""),
            ("server peak RSS", f"{result['server_peak_rss_mb']} MB", ""),
            ("core alone, in-process, cold: read + check the workspace", f"{result['core_alone']['scan_and_check_s']:.2f} s", ""),
            ("core alone, in-process: re-check the edited file p50 / p95",
             f"{result['core_alone']['recheck_file_ms']['p50']:.1f} / {result['core_alone']['recheck_file_ms']['p95']:.1f} ms", "")]
    table = ["| measure | value | target |", "|---|---|---|"] + [f"| {a} | {b} | {t} |" for a, b, t in rows]
    print(f"{args.stories} stories ({words} words) in {args.files} files, {args.changes} one-story edits, debounce 0")
    print("\n".join(table))
    if previous and "change_to_publish_ms" in previous:
        p = previous["change_to_publish_ms"]["p95"]
        print(f"p95 vs previous run ({previous.get('date')}): {c['p95'] / p:.2f}x" if p else "")
    if not args.no_write:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "lsp.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
        (OUT / "lsp.md").write_text(
            "# Language server latency\n\n"
            f"`python benchmarks/lsp_bench.py` on {result['date']}, {result['machine']}, Python {result['python']}: "
            f"{args.stories} stories ({words} words) in {args.files} files recombined from the real backlogs; "
            f"{args.changes} edits of one story each in one open file, debounce 0 (not counted). "
            f"Load average during the run: {result['load_average_1m']} (the machine is shared; "
            "figures vary with it).\n\n"
            + "\n".join(table) + "\n", "utf-8")


if __name__ == "__main__":
    main()

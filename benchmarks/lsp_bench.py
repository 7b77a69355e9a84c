"""Language server latency: first diagnostics of an opened file, didChange -> publishDiagnostics, the
initial scan, and a cold start to the daemon's semantic findings.

Starts the real server (`storytransformer lsp`) over stdio with pygls' client,
debounce 0 (the delay is not counted), and prints p50/p95/p99. Measures:

- open: didOpen -> the first diagnostics of that file (pushed, and pulled with
  ``textDocument/diagnostic``), sent right after ``initialized`` as an editor that
  restores a window does, in workspaces of several sizes (target: 1 s whatever
  the size; the workspace scan runs behind it);
- semantic: a cold start (no daemon, empty caches) to the first semantic finding
  (ST603-ST605, from the daemon's embedding index) of an opened 1,000-story file
  (target: 15 s on 2 cores);
- change: a 20,000-story workspace, one-story edits of one open file.

With LSP_BENCH_LOG_DIR set, the semantic run's server log (INFO) and the daemon's log are kept
there, to see where a cold start spends its time. Results go to docs/benchmarks/lsp.json and lsp.md. Needs the real backlogs next
to the project (the workspaces are recombined from them at run time; nothing is
committed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
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


SEMANTIC_CODES = {"ST603", "ST604", "ST605"}
LOG_DIR = os.environ.get("LSP_BENCH_LOG_DIR", "")  # set: the semantic run's server log goes there, to profile


def count_stories(ws_dir: Path) -> int:
    return sum(len([x for x in p.read_text("utf-8").splitlines() if x.strip()]) for p in ws_dir.glob("*.txt"))


def middle_file(ws_dir: Path) -> Path:
    files = sorted(ws_dir.glob("*.txt"))
    return files[len(files) // 2]


async def first_diagnostics(ws_dir: Path, pull: bool, runtime: Path) -> dict:
    """didOpen right after ``initialized`` -> the first diagnostics of that file (pushed or pulled)."""
    client = LanguageClient("lsp-bench", "1")
    first: dict[str, float] = {}
    scanned = asyncio.Event()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_publish(params: types.PublishDiagnosticsParams) -> None:
        first.setdefault(params.uri, time.perf_counter())

    @client.feature(types.WORKSPACE_CONFIGURATION)
    def on_configuration(params):
        return [None for _ in params.items]

    @client.feature(types.WORKSPACE_DIAGNOSTIC_REFRESH)
    def on_refresh(params):
        scanned.set()  # sent once the scan has checked every file (pull mode)

    caps = types.ClientCapabilities()
    if pull:
        caps = types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(diagnostic=types.DiagnosticClientCapabilities()),
            workspace=types.WorkspaceClientCapabilities(
                diagnostics=types.DiagnosticWorkspaceClientCapabilities(refresh_support=True)))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "STORYTRANSFORMER_CACHE_DIR": str(runtime / "cache")}
    files = sorted(ws_dir.glob("*.txt"))
    path = middle_file(ws_dir)
    uri = from_fs_path(str(path))
    text = path.read_text("utf-8")
    await client.start_io(sys.executable, "-m", "storytransformer", "lsp", "--log-level", "WARNING", env=env)
    await client.initialize_async(types.InitializeParams(
        capabilities=caps, root_uri=from_fs_path(str(ws_dir)),
        workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(ws_dir)), name="bench")],
        initialization_options={"debounceMs": 0, "daemon": {"enabled": False}}))
    client.initialized(types.InitializedParams())
    t0 = time.perf_counter()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="plaintext", version=1, text=text)))
    count = None
    if pull:
        report = await asyncio.wait_for(client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
            text_document=types.TextDocumentIdentifier(uri=uri))), 300)
        opened_s = time.perf_counter() - t0
        count = len(report.items)
        await asyncio.wait_for(scanned.wait(), 300)
        others = None
    else:
        end = time.perf_counter() + 300
        while uri not in first and time.perf_counter() < end:
            await asyncio.sleep(0.005)
        opened_s = first[uri] - t0
        while len(first) < len(files) and time.perf_counter() < end:
            await asyncio.sleep(0.02)
        others = len(first)
    scan_s = time.perf_counter() - t0
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return {"first_diagnostics_s": round(opened_s, 3), "whole_workspace_s": round(scan_s, 2),
            "pulled_items": count, "files_published": others}


async def semantic_cold(ws_dir: Path, runtime: Path) -> dict:
    """A cold start (no daemon, empty caches) to the first semantic finding of an opened file."""
    client = LanguageClient("lsp-bench", "1")
    seen: dict[str, float] = {}
    path = middle_file(ws_dir)
    uri = from_fs_path(str(path))

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_publish(params: types.PublishDiagnosticsParams) -> None:
        if params.uri != uri:
            return
        now = time.perf_counter()
        seen.setdefault("first", now)
        codes = {str(d.code) for d in params.diagnostics}
        if codes & SEMANTIC_CODES:
            seen.setdefault("semantic", now)
            seen["semantic_count"] = sum(str(d.code) in SEMANTIC_CODES for d in params.diagnostics)

    @client.feature(types.WORKSPACE_CONFIGURATION)
    def on_configuration(params):
        return [None for _ in params.items]

    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "STORYTRANSFORMER_RUNTIME_DIR": str(runtime / "st"),
           "STORYTRANSFORMER_CACHE_DIR": str(runtime / "cache"), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    log = ["--log-level", "INFO", "--log-file", os.path.join(LOG_DIR, "lsp-semantic.log")] if LOG_DIR else \
        ["--log-level", "WARNING"]
    if LOG_DIR:
        env["STORYTRANSFORMER_LOG_DIR"] = LOG_DIR  # the daemon's log
    await client.start_io(sys.executable, "-m", "storytransformer", "lsp", *log, env=env)
    try:
        await client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=from_fs_path(str(ws_dir)),
            workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(ws_dir)), name="bench")],
            initialization_options={"debounceMs": 0, "semantic": True, "daemon": {"enabled": True, "spawn": True}}))
        client.initialized(types.InitializedParams())
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="plaintext", version=1, text=path.read_text("utf-8"))))
        end = time.perf_counter() + 180
        while "semantic" not in seen and time.perf_counter() < end:
            await asyncio.sleep(0.02)
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    finally:
        subprocess.run([sys.executable, "-m", "storytransformer", "daemon", "stop"], env=env,
                       capture_output=True, timeout=60)
    return {"first_diagnostics_s": round(seen["first"] - t0, 2) if "first" in seen else None,
            "semantic_findings_s": round(seen["semantic"] - t0, 2) if "semantic" in seen else None,
            "semantic_findings": seen.get("semantic_count", 0)}


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


def open_rows(sizes: list[int], tmp: Path) -> list[dict]:
    """First diagnostics of an opened file in workspaces of each size (files of about 100 stories)."""
    rows = []
    for size in sizes:
        ws_dir = tmp / f"open-{size}"
        generate(ws_dir, size, max(2, size // 100))
        row = {"stories": count_stories(ws_dir), "files": len(list(ws_dir.glob("*.txt"))),
               "opened_file_stories": count_stories_in(middle_file(ws_dir))}
        for mode in ("push", "pull"):
            runtime = Path(tempfile.mkdtemp(prefix=f"st-lsp-open-{mode}-", dir=tmp))
            row[mode] = asyncio.run(first_diagnostics(ws_dir, mode == "pull", runtime))  # cold caches
        rows.append(row)
    return rows


def count_stories_in(path: Path) -> int:
    return len([x for x in path.read_text("utf-8").splitlines() if x.strip()])


def semantic_row(stories: int, tmp: Path) -> dict:
    ws_dir = tmp / f"semantic-{stories}"
    generate(ws_dir, stories, 1)
    runtime = Path(tempfile.mkdtemp(prefix="st-lsp-sem-", dir=tmp))
    return {"stories": count_stories(ws_dir), **asyncio.run(semantic_cold(ws_dir, runtime))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stories", type=int, default=20_000)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--changes", type=int, default=300)
    ap.add_argument("--open-sizes", default="263,1000,10000",
                    help="workspace sizes (stories) for the first-diagnostics measurement, comma separated")
    ap.add_argument("--semantic-stories", type=int, default=1000, help="stories of the opened file; 0: skip")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks")
    args = ap.parse_args()
    sizes = [int(x) for x in args.open_sizes.split(",") if x.strip()]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        opened = open_rows(sizes, Path(tmp))
        semantic = semantic_row(args.semantic_stories, Path(tmp)) if args.semantic_stories else None
        ws_dir = Path(tmp) / "ws"
        words = generate(ws_dir, args.stories, args.files)
        result = asyncio.run(run(ws_dir, args.files, args.changes))  # cold: empty caches
        warm = asyncio.run(run(ws_dir, args.files, 0))  # a restart: the caches the first run saved
        result["initial_diagnostics_warm_s"] = warm["initial_diagnostics_s"]
        os.environ["STORYTRANSFORMER_CACHE_DIR"] = str(Path(tmp) / "cache-core")
        result["core_alone"] = core_alone(ws_dir, args.changes)
    load_after = os.getloadavg()
    result.update(stories=args.stories, words=words, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  open_file=opened, semantic_cold=semantic,
                  load_average_1m=round(load_after[0], 2),
                  load_average={"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
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
    for row in opened:
        for mode in ("push", "pull"):
            rows.append((f"didOpen -> first diagnostics of a {row['opened_file_stories']}-story file ({mode}), "
                         f"workspace of {row['stories']} stories in {row['files']} files, cold",
                         f"{row[mode]['first_diagnostics_s']:.2f} s (whole workspace {row[mode]['whole_workspace_s']:.1f} s)",
                         "1 s"))
    if semantic:
        s_s = semantic["semantic_findings_s"]
        rows.append((f"cold start -> first semantic finding (ST603-ST605) of an opened {semantic['stories']}-story "
                     f"file, daemon started by the server",
                     f"{s_s:.1f} s ({semantic['semantic_findings']} findings)" if s_s is not None else "none within 180 s",
                     "15 s"))
    table = ["| measure | value | target |", "|---|---|---|"] + [f"| {a} | {b} | {t} |" for a, b, t in rows]
    print(f"{args.stories} stories ({words} words) in {args.files} files, {args.changes} one-story edits, debounce 0; "
          f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
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
            "First diagnostics: the file is opened right after `initialized` (as an editor restoring a window "
            "does), timed from `didOpen` to its first `publishDiagnostics` (push) or to the answer of "
            "`textDocument/diagnostic` sent with it (pull); the server's start and the client's settings "
            "round trip are not counted, its caches are empty. Semantic: from starting the server (no daemon "
            "running, empty caches, the embedding model's files in the page cache) to the first ST603-ST605 "
            "diagnostic of the opened file. "
            f"Load average (1, 5, 15 min) before the run: {', '.join(map(str, result['load_average']['before']))}; "
            f"after: {', '.join(map(str, result['load_average']['after']))} (the machine's 2 cores are shared; "
            "figures vary with it).\n\n"
            + "\n".join(table) + "\n", "utf-8")


if __name__ == "__main__":
    main()

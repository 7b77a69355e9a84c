"""The language server under abuse: malformed JSON-RPC, out-of-order notifications, bad ranges, a 1 MB document,
and a storm of incremental edits (50 didChange per second for 60 s by default).

Drives the real server (``storytransformer lsp`` over stdio) with a raw JSON-RPC client,
so it can send what no well-behaved client library would. Checks that the server stays
alive, that its resident memory (``VmRSS``) stays bounded, that the diagnostics it
publishes last equal those of the final text checked by the core directly, and that no
``publishDiagnostics`` names an older version after a newer one was published.

    python benchmarks/soak_lsp.py            # 60 s storm; results in docs/benchmarks/soak_lsp.json and .md
    python benchmarks/soak_lsp.py --quick    # 10 s storm
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
BACKLOGS = ROOT.parent / "shared" / "data" / "backlogs" / "dalpiaz"
SYNTHETIC = [
    "As a visitor, I want to search the catalogue, so that I can find a book.",
    "I want to export the monthly report, so that I can share it with the board.",
    "As a librarian, I want to add new titles (see the old form), so that the catalogue stays current.",
    "As a member, I want to renew a loan online and pay fines, so that I avoid a fine.",
    "As an admin, I want to quickly and easily manage users etc.",
]
WORDS = ["and", "quickly", "user", "report", "(note)", "or", "etc", "I want to", ", so that", "As a ", "\u00e9", "\U0001f600"]


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB, from /proc (0 where there is no /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def story_lines(n: int, seed: int = 1) -> list[str]:
    """``n`` story lines recombined from the real backlogs (read at run time), else from a few synthetic ones."""
    pool: list[str] = []
    if BACKLOGS.is_dir():
        for f in sorted(BACKLOGS.glob("*.txt")):
            pool.extend(line for line in f.read_text("utf-8", errors="replace").splitlines() if line.strip())
    pool = pool or SYNTHETIC
    rng = random.Random(seed)
    return [rng.choice(pool) for _ in range(n)]


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def utf16_to_index(line: str, col: int) -> int:
    """The code-point index of UTF-16 column ``col`` in ``line``."""
    n = 0
    for i, ch in enumerate(line):
        if n >= col:
            return i
        n += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


class RawLsp:
    """A JSON-RPC client over a server's stdin/stdout that can also send garbage."""

    def __init__(self, cmd: list[str], env: dict, cwd: str):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, cwd=cwd)
        self.responses: dict[int, dict] = {}
        self.notifications: queue.Queue = queue.Queue()
        self.published: list[dict] = []  # every publishDiagnostics, in arrival order
        self._cond = threading.Condition()
        self._ids = iter(range(1, 1 << 30))
        self._wlock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # -- wire ----------------------------------------------------------------
    def send_bytes(self, body: bytes) -> None:
        with self._wlock:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def send(self, msg: dict) -> None:
        self.send_bytes(json.dumps({"jsonrpc": "2.0", **msg}).encode("utf-8"))

    def notify(self, method: str, params: dict | None = None) -> None:
        self.send({"method": method, "params": params or {}})

    def request(self, method: str, params: dict | None = None, timeout: float = 60) -> dict:
        rid = next(self._ids)
        self.send({"id": rid, "method": method, "params": params or {}})
        deadline = time.monotonic() + timeout
        with self._cond:
            while rid not in self.responses:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no answer to {method} (server exit code {self.proc.poll()})")
                self._cond.wait(min(left, 0.5))
            return self.responses.pop(rid)

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length is None:
                continue
            msg = json.loads(out.read(length))
            if "method" in msg and "id" in msg:  # a request from the server: answer it plainly
                result = [{}] * len(msg["params"].get("items", [])) if msg["method"] == "workspace/configuration" else None
                self.send({"id": msg["id"], "result": result})
            elif "method" in msg:
                if msg["method"] == "textDocument/publishDiagnostics":
                    with self._cond:
                        self.published.append({**msg["params"], "_at": time.monotonic()})
                        self._cond.notify_all()
                self.notifications.put(msg)
            else:
                with self._cond:
                    self.responses[msg.get("id")] = msg
                    self._cond.notify_all()

    # -- helpers -------------------------------------------------------------
    def alive(self) -> bool:
        """The server answers a request (any answer, an error included)."""
        return self.proc.poll() is None and "id" in self.request("workspace/executeCommand",
                                                                  {"command": "storytransformer.engineStatus"}, 30)

    def wait_published(self, uri: str, version: int, timeout: float = 60, quiet: float = 0.5) -> dict:
        """The last publication for ``uri`` once one for ``version`` arrived and ``quiet`` s passed without another."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                mine = [p for p in self.published if p["uri"] == uri]
                if mine and mine[-1].get("version") == version and time.monotonic() - mine[-1]["_at"] >= quiet:
                    return mine[-1]
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no diagnostics for {uri} version {version}; last: "
                                       f"{mine[-1].get('version') if mine else None}")
                self._cond.wait(0.1)

    def close(self) -> int | None:
        try:
            self.request("shutdown", None, 10)
            self.notify("exit")
            self.proc.wait(10)
        except Exception:  # noqa: BLE001 - already gone, or stuck: kill it
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode


def start_server(root: Path, debounce_ms: int) -> RawLsp:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XDG_RUNTIME_DIR": str(root / ".rt"),
           "STORYTRANSFORMER_RUNTIME_DIR": str(root / ".rt"), "STORYTRANSFORMER_CACHE_DIR": str(root / ".cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])}
    (root / ".rt").mkdir(mode=0o700, exist_ok=True)
    lsp = RawLsp([sys.executable, "-m", "storytransformer", "lsp"], env, str(root))
    lsp.request("initialize", {
        "processId": os.getpid(), "rootUri": root.as_uri(), "workspaceFolders": [{"uri": root.as_uri(), "name": "soak"}],
        "capabilities": {"textDocument": {"publishDiagnostics": {"versionSupport": True}},
                         "general": {"positionEncodings": ["utf-16"]}},
        "initializationOptions": {"debounceMs": debounce_ms, "semantic": False, "daemon": {"enabled": False}},
    })
    lsp.notify("initialized", {})
    return lsp


def core_diagnostics(root: Path, path: Path, text: str) -> list[tuple]:
    """What the core says about ``text`` as the content of ``path`` (no server involved)."""
    from storytransformer.config import load_config
    from storytransformer.lint import Linter
    from storytransformer.workspace import Workspace

    config = load_config(start=root)
    ws = Workspace.from_paths([str(root)], config)
    ws.set_text(str(path), text)
    return sorted((f.code, f.range.start.line, f.range.start.utf16, f.range.end.line, f.range.end.utf16)
                  for f in Linter(ws).check_file(str(path)))


def lsp_diagnostics(pub: dict) -> list[tuple]:
    return sorted((d.get("code"), d["range"]["start"]["line"], d["range"]["start"]["character"],
                   d["range"]["end"]["line"], d["range"]["end"]["character"]) for d in pub["diagnostics"])


def abuse(lsp: RawLsp, root: Path) -> dict:
    """Bad input of every kind; returns how many messages were sent and whether the server answered after each group."""
    sent = 0
    other = (root / "abuse.txt").as_uri()
    groups = {
        "malformed JSON-RPC": [
            lambda: lsp.send_bytes(b"{not json"),
            lambda: lsp.send_bytes(b"[1, 2, 3]"),
            lambda: lsp.send_bytes(b"42"),
            lambda: lsp.send_bytes(b'{"jsonrpc": "2.0", "id": 99999}'),
            lambda: lsp.send_bytes(b'{"jsonrpc": "2.0", "method": 7, "params": []}'),
            lambda: lsp.send({"id": 99998, "method": "no/suchMethod", "params": {}}),
            lambda: lsp.send({"id": 99997, "method": "textDocument/codeAction", "params": {"nonsense": True}}),
            lambda: lsp.notify("textDocument/didOpen", {"textDocument": "not a map"}),
            lambda: lsp.send_bytes("{\"jsonrpc\": \"2.0\", \"method\": \"x\", \"params\": \"\udc80\"}"
                                   .encode("utf-8", "surrogateescape")),
        ],
        "out of order and repeated notifications": [
            lambda: lsp.notify("textDocument/didChange", {"textDocument": {"uri": other, "version": 3},
                                                          "contentChanges": [{"text": SYNTHETIC[1]}]}),
            lambda: lsp.notify("textDocument/didClose", {"textDocument": {"uri": other}}),
            lambda: lsp.notify("textDocument/didOpen", {"textDocument": {"uri": other, "languageId": "plaintext",
                                                                         "version": 5, "text": SYNTHETIC[0]}}),
            lambda: lsp.notify("textDocument/didOpen", {"textDocument": {"uri": other, "languageId": "plaintext",
                                                                         "version": 2, "text": SYNTHETIC[3]}}),
            lambda: lsp.notify("textDocument/didChange", {"textDocument": {"uri": other, "version": 1},
                                                          "contentChanges": [{"text": SYNTHETIC[2]}]}),
            lambda: lsp.notify("textDocument/didClose", {"textDocument": {"uri": other}}),
            lambda: lsp.notify("textDocument/didClose", {"textDocument": {"uri": other}}),
            lambda: lsp.notify("textDocument/didSave", {"textDocument": {"uri": other}}),
        ],
        "invalid ranges": [
            lambda: lsp.notify("textDocument/didOpen", {"textDocument": {"uri": other, "languageId": "plaintext",
                                                                         "version": 10, "text": "\n".join(SYNTHETIC)}}),
        ] + [
            (lambda r=r, v=v: lsp.notify("textDocument/didChange", {
                "textDocument": {"uri": other, "version": v},
                "contentChanges": [{"range": r, "text": "x"}]}))
            for v, r in enumerate([
                {"start": {"line": 10**6, "character": 0}, "end": {"line": 10**6, "character": 5}},
                {"start": {"line": 0, "character": -4}, "end": {"line": 0, "character": 2}},
                {"start": {"line": 2, "character": 9}, "end": {"line": 1, "character": 0}},
                {"start": {"line": 0, "character": 10**9}, "end": {"line": 0, "character": 10**9}},
                {"start": {"line": -1, "character": 0}, "end": {"line": 0, "character": 0}},
                {"start": {"line": "a", "character": None}, "end": {}},
            ], start=11)
        ] + [lambda: lsp.request("textDocument/codeAction", {
            "textDocument": {"uri": other}, "range": {"start": {"line": 99, "character": 99},
                                                      "end": {"line": -3, "character": 0}},
            "context": {"diagnostics": []}}, 30)],
    }
    answered = {}
    for name, actions in groups.items():
        for act in actions:
            act()
            sent += 1
        answered[name] = lsp.alive()
    lsp.notify("textDocument/didClose", {"textDocument": {"uri": other}})  # its stories must not count in the storm
    errors = {rid: lsp.responses.pop(rid, None) for rid in (99997, 99998)}
    return {"messages": sent, "alive_after": answered,
            "malformed_requests_answered": all(r is not None and "error" in r for r in errors.values())}


def big_document(lsp: RawLsp, root: Path, size: int = 1 << 20) -> dict:
    """Open a document of ``size`` bytes and wait for its diagnostics."""
    lines, total = [], 0
    for line in story_lines(size // 40 + 100, seed=7):
        if total >= size:
            break
        lines.append(line)
        total += len(line.encode("utf-8")) + 1
    text = "\n".join(lines) + "\n"
    uri = (root / "big.txt").as_uri()
    t0 = time.monotonic()
    lsp.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "plaintext", "version": 1, "text": text}})
    pub = lsp.wait_published(uri, 1, timeout=300, quiet=0.2)
    seconds = time.monotonic() - t0
    lsp.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    return {"bytes": len(text.encode("utf-8")), "stories": len(lines), "diagnostics": len(pub["diagnostics"]),
            "seconds_to_diagnostics": round(seconds, 2), "alive": lsp.alive()}


def random_edit(rng: random.Random, lines: list[str]) -> tuple[dict, str]:
    """One incremental change (UTF-16 range) that the client applies to its own copy too."""
    i = rng.randrange(len(lines))
    line = lines[i]
    kind = rng.random()
    a = rng.randint(0, utf16_len(line))
    if kind < 0.55:  # insert a word
        new = rng.choice(WORDS) if rng.random() < 0.7 else " "
        rng_ = {"start": {"line": i, "character": a}, "end": {"line": i, "character": a}}
    elif kind < 0.85:  # delete a few characters
        b = min(utf16_len(line), a + rng.randint(1, 8))
        new, rng_ = "", {"start": {"line": i, "character": a}, "end": {"line": i, "character": b}}
    elif kind < 0.93:  # a new story line
        new = "\n" + rng.choice(SYNTHETIC)
        end = utf16_len(line)
        rng_ = {"start": {"line": i, "character": end}, "end": {"line": i, "character": end}}
    else:  # join with the next line (removes a newline)
        if i + 1 >= len(lines):
            return random_edit(rng, lines)
        end = utf16_len(line)
        new, rng_ = " ", {"start": {"line": i, "character": end}, "end": {"line": i + 1, "character": 0}}
    return rng_, new


def apply_edit(lines: list[str], r: dict, new: str) -> list[str]:
    s, e = r["start"], r["end"]
    before = "\n".join(lines[:s["line"]] + [lines[s["line"]][:utf16_to_index(lines[s["line"]], s["character"])]])
    after = "\n".join([lines[e["line"]][utf16_to_index(lines[e["line"]], e["character"]):]] + lines[e["line"] + 1:])
    return (before + new + after).split("\n")


def storm(lsp: RawLsp, root: Path, seconds: float, rate: float, stories: int = 200, seed: int = 11) -> dict:
    """``rate`` incremental didChange per second for ``seconds``; memory sampled every second."""
    path = root / "storm.txt"
    lines = story_lines(stories, seed=seed)
    path.write_text("\n".join(lines), "utf-8")
    uri = path.as_uri()
    lsp.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "plaintext", "version": 1,
                                                         "text": "\n".join(lines)}})
    lsp.wait_published(uri, 1, timeout=120, quiet=0.2)
    rng = random.Random(seed)
    pid = lsp.proc.pid
    rss = [rss_kib(pid)]
    version, sent = 1, 0
    t0 = time.monotonic()
    next_sample = t0 + 1
    while (now := time.monotonic()) - t0 < seconds:
        r, new = random_edit(rng, lines)
        lines = apply_edit(lines, r, new)
        version += 1
        lsp.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                              "contentChanges": [{"range": r, "text": new}]})
        sent += 1
        if now >= next_sample:
            rss.append(rss_kib(pid))
            next_sample += 1
        time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
    elapsed = time.monotonic() - t0
    final = lsp.wait_published(uri, version, timeout=120, quiet=1.0)
    rss.append(rss_kib(pid))
    text = "\n".join(lines)
    expected = core_diagnostics(root, path, text)
    got = lsp_diagnostics(final)
    versions = [p.get("version") for p in lsp.published if p["uri"] == uri]
    backwards = sum(1 for a, b in zip(versions, versions[1:]) if b is not None and a is not None and b < a)
    alive = lsp.alive()
    return {"seconds": round(elapsed, 1), "changes": sent, "rate_per_s": round(sent / elapsed, 1),
            "final_version": version, "final_stories": len([ln for ln in lines if ln.strip()]),
            "publications": len(versions), "stale_publications": backwards,
            "final_diagnostics": len(got), "matches_core": got == expected,
            "mismatch": sorted(set(got) ^ set(expected))[:10],
            "rss_kib": {"start": rss[0], "peak": max(rss), "end": rss[-1]}, "rss_samples_kib": rss, "alive": alive}


def run(seconds: float, rate: float, debounce_ms: int = 10, big_bytes: int = 1 << 20) -> dict:
    with tempfile.TemporaryDirectory(prefix="st-soak-lsp-") as tmp:
        root = Path(tmp)
        (root / "readme.md").write_text("Not a story file.\n")
        lsp = start_server(root, debounce_ms)
        try:
            start_rss = rss_kib(lsp.proc.pid)
            result = {"abuse": abuse(lsp, root), "big_document": big_document(lsp, root, big_bytes),
                      "storm": storm(lsp, root, seconds, rate)}
            result["rss_kib_at_start"] = start_rss
            result["rss_kib_at_end"] = rss_kib(lsp.proc.pid)
        finally:
            result_code = lsp.close()
        result["exit_code"] = result_code
        return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rate", type=float, default=50, help="didChange per second")
    ap.add_argument("--debounce-ms", type=int, default=10, help="the server's debounce (small: many publications)")
    ap.add_argument("--quick", action="store_true", help="10 s storm")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    seconds = 10 if args.quick else args.seconds
    t0 = time.monotonic()
    result = run(seconds, args.rate, args.debounce_ms)
    result["wall_s"] = round(time.monotonic() - t0, 1)
    result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    s, b, a = result["storm"], result["big_document"], result["abuse"]
    rows = [
        ("bad messages sent", a["messages"], "server answered after each group: " + str(all(a["alive_after"].values()))
         + f"; requests with bad params answered with an error: {a['malformed_requests_answered']}"),
        ("1 MB document", f"{b['bytes']:,} bytes, {b['stories']:,} stories", f"diagnostics in {b['seconds_to_diagnostics']} s"),
        ("didChange storm", f"{s['changes']:,} in {s['seconds']} s ({s['rate_per_s']}/s)", f"{s['publications']} publications"),
        ("stale publications", s["stale_publications"], "a version older than one already published"),
        ("final diagnostics = core", s["matches_core"], f"{s['final_diagnostics']} diagnostics"),
        ("RSS (KiB) start/peak/end of storm", f"{s['rss_kib']['start']:,} / {s['rss_kib']['peak']:,} / {s['rss_kib']['end']:,}",
         f"server start {result['rss_kib_at_start']:,}, end {result['rss_kib_at_end']:,}"),
        ("server alive at the end", s["alive"], f"exit code after shutdown {result['exit_code']}"),
    ]
    md = ["| check | figure | note |", "|---|---|---|"] + [f"| {a_} | {b_} | {c_} |" for a_, b_, c_ in rows]
    print("\n".join(md))
    ok = (s["alive"] and s["matches_core"] and s["stale_publications"] == 0 and all(a["alive_after"].values())
          and b["alive"] and a["malformed_requests_answered"])
    if s["mismatch"]:
        print("diagnostics that differ from the core's (first 10):", s["mismatch"])
    if not args.no_write:
        name = "soak_lsp_quick" if args.quick else "soak_lsp"
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        (OUT / f"{name}.md").write_text(f"# Language server soak\n\n`python benchmarks/soak_lsp.py{' --quick' if args.quick else ''}`"
                                        f" ({result['wall_s']} s wall)\n\n" + "\n".join(md) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

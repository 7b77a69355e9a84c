"""Long fuzzing run of the readers and rules: random and mutated real backlog files.

Every input must give findings or a clear per-file error (FileProblem / ValueError
naming the problem); any other exception is a failure, saved under the output
directory for reproduction. Prints a table and writes docs/benchmarks/fuzz.json.

    python benchmarks/fuzz_bench.py [--inputs 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
import traceback
from pathlib import Path

from storytransformer.config import Config
from storytransformer.lint import Linter
from storytransformer.workspace import FileProblem, Workspace, decode
from storytransformer.formats import read_source

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "backlogs" / "dalpiaz"
OUT = ROOT / "docs" / "benchmarks"
SUFFIXES = [".txt", ".md", ".feature", ".csv"]
BAD_BYTES = [b"\x00", b"\xff\xfe", b"\xe9"]  # rare: most inputs should reach the parser
INSERTS = [b"As a ", b"I want to ", b" so that ", b" and ", b"/", b"(", b")", b"\n", b"\r\n", "👩‍💻".encode(), b"- ", b"## US-1: ", b"Feature: ", b"@US-9\n", b'"', b",", b"<!-- storytransformer: ignore -->",
           b"# storytransformer: ignore-file ST701\n", b"\t" * 50, b"x" * 5000]


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 12)):
        op = rng.random()
        pos = rng.randint(0, len(data)) if data else 0
        if op < 0.3 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256) if rng.random() < 0.03 else rng.randrange(32, 127)
        elif op < 0.6:
            data[pos:pos] = rng.choice(BAD_BYTES) if rng.random() < 0.03 else rng.choice(INSERTS)
        elif op < 0.8 and data:
            del data[pos:pos + rng.randint(1, 200)]
        elif op < 0.9:
            data = data[: rng.randint(0, len(data))]
        else:
            start = rng.randint(0, max(0, len(data) - 1))
            data[pos:pos] = data[start:start + rng.randint(1, 500)]
    return bytes(data)


def one_input(data: bytes, suffix: str, config: Config) -> str:
    """'ok', 'clear-error', or raises for a failure."""
    path = f"fuzz{suffix}"
    text = decode(path, data)
    if isinstance(text, FileProblem):
        return "clear-error"
    try:
        source = read_source(path, text, config)
    except ValueError:
        return "clear-error"
    lines = text.splitlines()
    for s in source.stories:
        assert 0 <= s.range.start.line <= s.range.end.line < max(len(lines), 1), "range outside the file"
    ws = Workspace(config)
    ws.set_text(path, text)
    Linter(ws, use_disk_cache=False).check()
    return "ok"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--failures", type=Path, default=Path("fuzz-failures"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    corpus = [p.read_bytes() for p in sorted(REAL.glob("*.txt"))] if REAL.is_dir() else [b"As a user, I want to log in.\n"]
    config = Config()
    counts = {"ok": 0, "clear-error": 0, "failure": 0}
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    for i in range(args.inputs):
        base = rng.choice(corpus)
        if rng.random() < 0.5:  # a slice of a real file, so inputs stay small and varied
            a = rng.randint(0, len(base))
            base = base[a:a + rng.randint(50, 4000)]
        data = mutate(base, rng) if rng.random() < 0.9 else bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
        suffix = rng.choice(SUFFIXES)
        try:
            counts[one_input(data, suffix, config)] += 1
        except Exception:
            counts["failure"] += 1
            args.failures.mkdir(exist_ok=True)
            (args.failures / f"{i}{suffix}").write_bytes(data)
            (args.failures / f"{i}.txt").write_text(traceback.format_exc())
    elapsed = time.perf_counter() - t0
    result = {"date": time.strftime("%Y-%m-%d"), "inputs": args.inputs, "seed": args.seed, **counts,
              "seconds": round(elapsed, 1), "inputs_per_s": round(args.inputs / elapsed),
              "rss_start_mb": round(rss_start), "rss_end_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    table = ("| inputs | findings | clear errors | failures | seconds | RSS start/end (MB) |\n|---:|---:|---:|---:|---:|---:|\n"
             f"| {args.inputs} | {counts['ok']} | {counts['clear-error']} | {counts['failure']} | {result['seconds']} "
             f"| {result['rss_start_mb']}/{result['rss_end_mb']} |")
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "fuzz.json").write_text(json.dumps(result, indent=2) + "\n")
    if counts["failure"]:
        raise SystemExit(f"{counts['failure']} failures saved under {args.failures}/")


if __name__ == "__main__":
    main()

"""From one edited story to its refreshed semantic findings: the full computation against the incremental one.

The daemon refreshes ST603-ST605 after every settled edit: it synchronises the similarity index (only the
changed story is embedded), brings the related pairs up to date, then builds the findings and converts them
for the wire. This measures each step at 20,000 stories (benchmarks/workspace_gen.py, recombined from the
real backlogs at run time; nothing generated is committed), in one run, for both ways of building the
findings after the same edits:

* full: :func:`semantic_findings` over the whole workspace and every finding converted (the daemon before);
* incremental: :class:`IncrementalFindings` rebuilds only what the edit can change and only the files whose
  findings changed are converted (the daemon now).

Both run on the same index after the same sync and pairs step, and the incremental result is checked to be
equal to the full one after every edit.

    python benchmarks/refresh_bench.py                  # 20,000 stories, 30 edits, writes docs/benchmarks/refresh.{json,md}
    python benchmarks/refresh_bench.py --stories 5000 --edits 10 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "server"), str(ROOT / "benchmarks")]

EDIT_KINDS = ("reword", "add", "delete", "move")
WORDS = ("quickly", "online", "again", "every", "shared", "saved")


def _edit(rng: random.Random, files: list[Path], kind: str) -> list[Path]:
    """One edit on disk of ``kind``; returns the files it wrote."""
    src = rng.choice(files)
    lines = src.read_text("utf-8").splitlines()
    i = rng.randrange(len(lines))
    if kind == "reword":
        words = lines[i].split()
        words.insert(rng.randrange(1, len(words)), rng.choice(WORDS))
        lines[i] = " ".join(words)
    elif kind == "add":
        donor = rng.choice(files).read_text("utf-8").splitlines()
        words = rng.choice(donor).split()
        words.insert(rng.randrange(1, len(words)), rng.choice(WORDS))
        lines.insert(i, " ".join(words))
    elif kind == "delete":
        del lines[i]
    elif kind == "move":
        moved = lines.pop(i)
        dest = rng.choice([f for f in files if f != src])
        dest_lines = dest.read_text("utf-8").splitlines()
        dest_lines.insert(rng.randrange(len(dest_lines) + 1), moved)
        src.write_text("\n".join(lines) + "\n", "utf-8")
        dest.write_text("\n".join(dest_lines) + "\n", "utf-8")
        return [src, dest]
    src.write_text("\n".join(lines) + "\n", "utf-8")
    return [src]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def run(stories: int, edits: int, seed: int, near_every: int = 5) -> dict:
    from storytransformer.config import Config
    from storytransformer.model_checking import duplicate_pairs
    from storytransformer.similarity import semantic_findings
    from storytransformer.similarity.near_pairs import near_pairs
    from storytransformer.similarity.incremental_findings import IncrementalFindings
    from storytransformer.similarity.index import SimilarityIndex
    from storytransformer.workspace import Workspace
    from storytransformer_server.daemon.wire import finding_to_wire
    from workspace_gen import generate

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "ws"
        generate(target, stories=stories, files=200)
        config = Config()
        ws = Workspace.from_paths([str(target)], config)
        files = sorted(Path(p) for p in ws.files)
        started = time.perf_counter()
        index = SimilarityIndex.build(ws.stories(), config.similarity)
        index.save_cache()
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        first = semantic_findings(ws, config, index=index)
        first_s = time.perf_counter() - started
        incremental = IncrementalFindings()
        incremental.refresh(ws, config, index)
        assert incremental.findings() == first
        rng = random.Random(seed)
        rows = []
        for n in range(edits):
            kind = EDIT_KINDS[n % len(EDIT_KINDS)]
            before = {(s.file, s.text) for s in ws.stories()}
            for path in _edit(rng, files, kind):
                ws.load(str(path))
            t0 = time.perf_counter()
            index.sync(list(ws.stories()))  # the daemon's embedding step: only the edited story is embedded
            t1 = time.perf_counter()
            index.related_arrays()  # every candidate's relation decided afresh (both ways need it)
            t2 = time.perf_counter()
            changed = incremental.refresh(ws, config, index)
            lists = incremental.by_file()
            wire_inc = {p: [finding_to_wire(f) for f in lists.get(p, [])] for p in changed}
            t3 = time.perf_counter()
            full = semantic_findings(ws, config, index=index)
            t4 = time.perf_counter()
            wire_full = [finding_to_wire(f) for f in full]
            t5 = time.perf_counter()
            # The daemon's model round after an edit (a kept run of the model checks, the model resident): the
            # near pairs of the stories typed or reworded since, from their files' semantic findings.
            edited = [s for s in ws.stories() if (s.file, s.text) not in before]
            mine = {s.file for s in edited}
            own = duplicate_pairs(list(ws.stories()), [f for f in full if f.file in mine], config, index,
                                  only=lambda s: (s.file, s.text) not in before) if edited else []
            t6 = time.perf_counter()
            every = near_pairs(index) if n < near_every else None  # what a whole run computes
            t7 = time.perf_counter()
            stats = incremental.stats
            rows.append({"edit": kind, "sync_ms": _ms(t1 - t0), "pairs_ms": _ms(t2 - t1),
                         "incremental_ms": _ms(t3 - t2), "full_ms": _ms(t4 - t3), "full_wire_ms": _ms(t5 - t4),
                         "equal": incremental.findings() == full, "mode": stats.mode,
                         "stories_rebuilt": stats.recomputed_stories, "files_changed": len(changed),
                         "relinked_elsewhere": stats.relinked_elsewhere,
                         "findings": len(full), "wire_files": len(wire_inc), "wire_findings": len(wire_full),
                         "edited_stories": len(edited), "edited_near_pairs": len(own), "edited_pairs_ms": _ms(t6 - t5),
                         "every_near_pair_ms": _ms(t7 - t6) if every is not None else None,
                         "every_near_pair": len(every) if every is not None else None})
            print(f"{n:3d} {kind:8s} sync {rows[-1]['sync_ms']:7.1f} pairs {rows[-1]['pairs_ms']:7.1f} "
                  f"incremental {rows[-1]['incremental_ms']:7.1f} full {rows[-1]['full_ms'] + rows[-1]['full_wire_ms']:8.1f} ms "
                  f"({stats.recomputed_stories} stories rebuilt, equal: {rows[-1]['equal']})", flush=True)
        # The daemon also copies every whole-story vector for the typing lookup after each sync.
        from storytransformer.similarity.typing_lookup import TypingLookup

        typing = TypingLookup(index.embedder)
        t = time.perf_counter()
        typing.refresh(index)
        typing_snapshot_ms = _ms(time.perf_counter() - t)
    load_after = os.getloadavg()

    def med(key):
        return round(statistics.median(r[key] for r in rows), 1)

    def p95(key):
        values = sorted(r[key] for r in rows)
        return round(values[min(len(values) - 1, int(0.95 * len(values)))], 1)

    for r in rows:
        r["full_total_ms"] = round(r["sync_ms"] + r["pairs_ms"] + r["full_ms"] + r["full_wire_ms"], 1)
        r["incremental_total_ms"] = round(r["sync_ms"] + r["pairs_ms"] + r["incremental_ms"], 1)
    summary = {k: {"median": med(k), "p95": p95(k), "max": max(r[k] for r in rows)} for k in
               ("sync_ms", "pairs_ms", "full_ms", "full_wire_ms", "incremental_ms", "full_total_ms", "incremental_total_ms",
                "edited_pairs_ms")}
    whole = [r["every_near_pair_ms"] for r in rows if r["every_near_pair_ms"] is not None]
    summary["every_near_pair_ms"] = {"median": round(statistics.median(whole), 1), "max": max(whole),
                                     "runs": len(whole), "pairs": rows[0]["every_near_pair"]}
    return {"stories": len(index), "files": len(files), "findings": len(first), "edits": edits,
            "equal": sum(r["equal"] for r in rows), "incremental_refreshes": sum(r["mode"] == "incremental" for r in rows),
            "index_build_s": round(build_s, 1), "first_full_findings_s": round(first_s, 2),
            "typing_snapshot_ms": typing_snapshot_ms, "summary": summary, "rows": rows,
            "stories_rebuilt_median": statistics.median(r["stories_rebuilt"] for r in rows),
            "relinked_elsewhere": sum(r["relinked_elsewhere"] for r in rows),
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after]}


def markdown(result: dict, env: dict) -> str:
    s = result["summary"]
    lines = [
        "# From one edited story to its refreshed semantic findings",
        "",
        f"`python benchmarks/refresh_bench.py` ({result['stories']:,} stories in {result['files']} files, "
        f"generated by benchmarks/workspace_gen.py; {result['edits']} edits, in turn a reworded story, an added one, "
        f"a deleted one and one moved to another file). {env['cpus']} CPUs, torch threads {env['threads']}, "
        f"load average {result['load_before'][0]} before and {result['load_after'][0]} after the run "
        f"(a shared machine: other work ran at the same time). Python {env['python']}.",
        "",
        "Both ways build the findings after the same sync (the edited story embedded) and the same update of the "
        "related pairs, on the same index; the incremental result equalled the full one after "
        f"{result['equal']} of {result['edits']} edits ({result['incremental_refreshes']} refreshed incrementally, "
        f"a median of {result['stories_rebuilt_median']} stories' findings rebuilt per edit; in "
        f"{result['relinked_elsewhere']} slots the relations changed away from the edited stories, through the "
        "near-best margin or the stand-out z-score, and were rebuilt too).",
        "",
        "| step (ms) | median | p95 | max |",
        "|---|---:|---:|---:|",
        f"| sync: embed the edited story | {s['sync_ms']['median']} | {s['sync_ms']['p95']} | {s['sync_ms']['max']} |",
        f"| relations of the candidate pairs decided afresh | {s['pairs_ms']['median']} | {s['pairs_ms']['p95']} | {s['pairs_ms']['max']} |",
        f"| full: a Pair object per related pair, every finding built | {s['full_ms']['median']} | {s['full_ms']['p95']} | {s['full_ms']['max']} |",
        f"| full: every finding converted for the wire | {s['full_wire_ms']['median']} | {s['full_wire_ms']['p95']} | {s['full_wire_ms']['max']} |",
        f"| incremental: affected findings built, changed files converted | {s['incremental_ms']['median']} | {s['incremental_ms']['p95']} | {s['incremental_ms']['max']} |",
        f"| **edit to findings, full** | **{s['full_total_ms']['median']}** | **{s['full_total_ms']['p95']}** | {s['full_total_ms']['max']} |",
        f"| **edit to findings, incremental** | **{s['incremental_total_ms']['median']}** | **{s['incremental_total_ms']['p95']}** | {s['incremental_total_ms']['max']} |",
        "",
        f"{result['findings']:,} semantic findings with the default rules. Building the index (warm or cold cache) "
        f"took {result['index_build_s']} s, the first full computation of the findings {result['first_full_findings_s']} s. "
        f"The typing lookup's snapshot of the index (a copy of every whole-story vector, taken after each sync) "
        f"costs {result['typing_snapshot_ms']} ms on top.",
        "",
        "After a run of the model checks (the editor's Run Model Checks), the daemon asks the resident model about "
        "the near pairs each edit makes. Finding them, for the stories typed or reworded by the edit against the "
        f"whole index: median {s['edited_pairs_ms']['median']} ms, p95 {s['edited_pairs_ms']['p95']}, max "
        f"{s['edited_pairs_ms']['max']}; every near pair of the workspace, as a whole run finds them "
        f"({s['every_near_pair_ms']['pairs']:,} pairs, timed after the first {s['every_near_pair_ms']['runs']} edits): "
        f"median {s['every_near_pair_ms']['median']} ms. Not included: the model's questions.",
        "",
        "The daemon builds the findings holding the workspace root's lock, so every other request on that root "
        "waited for the full build; the incremental refresh holds it for the relations and the affected findings "
        "only. Not included above: the daemon's settle delay before a refresh and the request round trips.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stories", type=int, default=20_000)
    ap.add_argument("--edits", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default: 2, the target machine)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    env = {"cpus": os.cpu_count(), "threads": args.threads, "python": platform.python_version(),
           "machine": platform.machine()}
    result = run(args.stories, args.edits, args.seed)
    result["env"] = env
    text = markdown(result, env)
    print(text)
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "refresh.json").write_text(json.dumps(result, indent=1) + "\n", "utf-8")
        (args.out / "refresh.md").write_text(text, "utf-8")
    return 0 if result["equal"] == result["edits"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

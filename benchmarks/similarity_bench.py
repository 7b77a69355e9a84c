"""Speed and memory of the similarity index: cold and warm embedding, search, incremental update.

Runs on the 22 real backlogs and on a generated workspace of about 20,000 stories
recombined from them at run time (roles, halves of means and ends of different
real stories; nothing generated is committed). Every run uses a fresh cache
directory, so "cold" really embeds everything and "warm" reads only the cache.

    python benchmarks/similarity_bench.py                  # both workspaces, writes docs/benchmarks/similarity.{json,md}
    python benchmarks/similarity_bench.py --stories 5000   # a smaller generated workspace
    python benchmarks/similarity_bench.py --threads 2      # torch threads (default: 2, the target machine)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT.parent / "shared" / "data" / "backlogs" / "dalpiaz"
PROFILE_TO: Path | None = None  # --profile: where to write a profile of the all-pairs step


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(target: Path, n: int, real: Path, seed: int = 11, files: int = 100) -> int:
    """Write ``n`` mostly distinct stories in ``files`` text files, recombined from the real ones."""
    from storytransformer.config import Config
    from storytransformer.workspace import Workspace

    rng = random.Random(seed)
    real_stories = [s for s in Workspace.from_paths([str(real)], Config()).stories() if s.role and s.means]
    roles = [s.role.text for s in real_stories]
    means = [s.means.text.split() for s in real_stories]
    ends = [s.ends.text for s in real_stories if s.ends]
    target.mkdir(parents=True, exist_ok=True)
    per_file = -(-n // files)
    written = 0
    for f in range(files):
        lines = []
        for _ in range(min(per_file, n - written)):
            a, b = rng.choice(means), rng.choice(means)
            cut_a, cut_b = max(1, len(a) // 2), len(b) // 2
            text = f"As a {rng.choice(roles)}, I want to {' '.join(a[:cut_a] + b[cut_b:])}"
            if rng.random() < 0.6:
                text += f", so that {rng.choice(ends)}"
            lines.append(text + ".")
        written += len(lines)
        (target / f"gen-{f:03d}.txt").write_text("\n".join(lines) + "\n", "utf-8")
    return written


def measure(name: str, paths: list[str], model: str = "", quantize: str = "none", queries: int = 200) -> dict:
    from storytransformer.config import Config, SimilarityConfig
    from storytransformer.formats import read_source
    from storytransformer.similarity.embedder import Embedder
    from storytransformer.similarity.index import SimilarityIndex
    from storytransformer.workspace import Workspace

    cfg = SimilarityConfig(model=model)
    cfg.quantize = quantize
    ws = Workspace.from_paths(paths, Config())
    stories = list(ws.stories())
    row: dict = {"workspace": name, "quantize": quantize, "stories": len(stories)}

    # Cold: empty cache, every text through the model (the model itself is loaded beforehand).
    emb = Embedder(cfg.model, batch_size=cfg.batch_size, quantize=quantize)
    emb.encode(["warm-up so that the model load is not counted"])
    emb.computed = 0
    t = time.perf_counter()
    index = SimilarityIndex.build(stories, cfg, embedder=emb)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    emb.save()
    row["cache_write_s"] = round(time.perf_counter() - t, 3)
    row.update(cold_embed_s=round(cold, 2), texts_embedded=emb.computed,
               cold_stories_per_s=round(len(stories) / cold, 1), cold_texts_per_s=round(emb.computed / cold, 1))

    # Warm: a new process would load the cache file, index and find every related pair.
    t = time.perf_counter()
    warm_emb = Embedder(cfg.model, batch_size=cfg.batch_size, quantize=quantize)
    load = time.perf_counter() - t
    t2 = time.perf_counter()
    warm = SimilarityIndex.build(stories, cfg, embedder=warm_emb)
    build = time.perf_counter() - t2
    t3 = time.perf_counter()
    if PROFILE_TO:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
    pairs = warm.pairs()
    all_pairs = time.perf_counter() - t3
    if PROFILE_TO:
        prof.disable()
        with open(PROFILE_TO / f"profile-pairs-{len(stories)}-{quantize}.txt", "w") as f:
            pstats.Stats(prof, stream=f).sort_stats("tottime").print_stats(25)
    row.update(warm_cache_load_s=round(load, 3), warm_index_build_s=round(build, 3), all_pairs_s=round(all_pairs, 3),
               warm_total_s=round(time.perf_counter() - t, 3), warm_texts_embedded=warm_emb.computed,
               related_pairs=len(pairs))
    # The same warm path with the learned pair judge deciding (similarity.judge = true).
    judging = SimilarityConfig(model=model, judge=True)
    judging.quantize = quantize
    t = time.perf_counter()
    judged = SimilarityIndex.build(stories, judging, embedder=Embedder(cfg.model, batch_size=cfg.batch_size, quantize=quantize))
    t3 = time.perf_counter()
    judged_pairs = judged.pairs()
    row.update(judge_all_pairs_s=round(time.perf_counter() - t3, 3), judge_warm_total_s=round(time.perf_counter() - t, 3),
               judge_related_pairs=len(judged_pairs))
    del judged
    t = time.perf_counter()
    clusters = warm.clusters()
    row.update(clusters_s=round(time.perf_counter() - t, 3), clusters=len(clusters))

    # Top-k search for indexed stories (no embedding needed) and for new free text (one embedding each).
    rng = random.Random(3)
    sample = rng.sample(stories, min(queries, len(stories)))
    t = time.perf_counter()
    for s in sample:
        warm.neighbours(s, k=10)
    row["topk_indexed_ms"] = round((time.perf_counter() - t) / len(sample) * 1000, 2)
    free = [f"As a {rng.choice(['visitor', 'curator', 'admin'])}, I want to review item {i} of the backlog" for i in range(20)]
    t = time.perf_counter()
    for q in free:
        warm.neighbours(q, k=10)
    row["topk_new_text_ms"] = round((time.perf_counter() - t) / len(free) * 1000, 2)

    # Incremental: edit one story of one file, update the index, query again.
    times = []
    path = next(iter(ws.files))
    for i in range(10):
        src = ws.files[path]
        lines = list(src.lines)
        lines[i % len(lines)] = lines[i % len(lines)].rstrip(".") + f" within {i + 2} days."
        new = read_source(path, "\n".join(lines) + "\n", Config())
        t = time.perf_counter()
        warm.update(new.stories)
        edited = new.stories[i % len(new.stories)]
        warm.neighbours(edited, k=10)
        times.append(time.perf_counter() - t)
    times.sort()
    row["edit_update_and_query_ms_median"] = round(times[len(times) // 2] * 1000, 1)
    row["edit_update_and_query_ms_max"] = round(times[-1] * 1000, 1)
    t = time.perf_counter()
    warm.pairs()
    row["all_pairs_after_edit_s"] = round(time.perf_counter() - t, 3)
    row["peak_rss_mb"] = round(peak_rss_mb(), 0)
    return row


COLUMNS = [("workspace", "workspace"), ("quantize", "quantize"), ("stories", "stories"), ("texts_embedded", "texts embedded"),
           ("cold_stories_per_s", "cold stories/s"), ("cold_texts_per_s", "cold texts/s"),
           ("warm_total_s", "warm load+index+all pairs (s)"), ("all_pairs_s", "all pairs (s)"),
           ("judge_warm_total_s", "the same, judge = true (s)"), ("judge_all_pairs_s", "all pairs, judge = true (s)"),
           ("topk_indexed_ms", "top-10 (ms)"), ("topk_new_text_ms", "top-10 new text (ms)"),
           ("edit_update_and_query_ms_median", "edit+re-query median (ms)"), ("peak_rss_mb", "peak RSS (MB)")]


def markdown(rows: list[dict], env: dict) -> str:
    head = "| " + " | ".join(h for _, h in COLUMNS) + " |"
    sep = "|" + "---|" * len(COLUMNS)
    body = ["| " + " | ".join(str(r.get(k, "")) for k, _ in COLUMNS) + " |" for r in rows]
    return "\n".join(["# Similarity index benchmark", "",
                      "Generated by `benchmarks/similarity_bench.py`. " + ", ".join(f"{k}: {v}" for k, v in env.items()), "",
                      head, sep, *body, "",
                      "Cold: every text (whole story, role, means, ends; de-duplicated) through all-MiniLM-L6-v2 "
                      "with an empty cache. Warm: a new embedder loads the msgpack cache, builds the index and "
                      "finds every related pair (blocked matrix products). Edit: one story of a file changes; "
                      "the file's stories are updated and the edited story re-queried.", ""])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stories", type=int, default=20_000, help="size of the generated workspace (0: skip it)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--real", type=Path, default=REAL)
    ap.add_argument("--model", default="", help="a sentence-transformers directory (default: the packaged all-MiniLM-L6-v2)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks", help="where to write similarity.json/.md")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--profile", action="store_true", help="also write a cProfile of the all-pairs step to --out")
    ap.add_argument("--quantize", nargs="+", default=["none"], choices=["none", "int8"], help="one row per choice")
    args = ap.parse_args(argv)
    if not args.real.is_dir():
        print(f"real backlogs not found at {args.real}", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    global PROFILE_TO
    if args.profile:
        PROFILE_TO = args.out
        args.out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STORYTRANSFORMER_CACHE_DIR"] = str(Path(tmp) / "cache")
        gen = Path(tmp) / "generated"
        n = generate(gen, args.stories, args.real) if args.stories else 0
        for q in args.quantize:
            rows.append(measure("22 real backlogs", [str(args.real)], args.model, q))
            print(json.dumps(rows[-1]), flush=True)
            if n:
                rows.append(measure(f"generated ({n})", [str(gen)], args.model, q))
                print(json.dumps(rows[-1]), flush=True)
    import numpy
    import sentence_transformers

    env = {"date": time.strftime("%Y-%m-%d"), "cpu": platform.processor() or platform.machine(),
           "torch threads": args.threads, "cpus visible": len(os.sched_getaffinity(0)),
           "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
           "sentence-transformers": sentence_transformers.__version__}
    md = markdown(rows, env)
    print(md)
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "similarity.json").write_text(json.dumps({"environment": env, "results": rows}, indent=2) + "\n", "utf-8")
        (args.out / "similarity.md").write_text(md, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

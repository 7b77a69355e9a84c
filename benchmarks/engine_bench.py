"""Model engine speed and grounding (issue 5): load time cold (GGUF -> safetensors cache) and warm
(from the cache), scoring throughput, generation tokens/s, time to a merge proposal, peak RSS
(and GPU memory), and the share of proposals the validator rejects on real backlogs.

    python benchmarks/engine_bench.py                           # CPU, the packaged SmolLM2-135M
    python benchmarks/engine_bench.py --backlogs DIR --jobs 20  # + rejection share on real backlogs
    python3 benchmarks/engine_bench.py --device cuda --out OUT  # a CUDA machine (bf16, SDPA)

Prints a table and writes engine[-DEVICE].json / .md (default docs/benchmarks/).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Made up for this benchmark (no real backlog is copied into the project).
PAIRS = [
    ("As a visitor, I want to search events, so that I find concerts.", "As a visitor, I want to search events by date."),
    ("As a librarian, I want to register new books, so that readers can borrow them.",
     "As a librarian, I want to register books with their ISBN."),
]
STORIES = [
    "As a visitor, I want to search events, so that I find concerts.",
    "As a cook, I want to chop onions, so that the soup tastes good.",
    "As an admin, I want to lock user accounts, so that attackers cannot log in.",
    "As a reader, I want to borrow books, so that I can read them at home.",
] * 8


def rss_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def timed(fn, *a, **k):
    t = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--attention", default="auto")
    ap.add_argument("--quantization", default="none")
    ap.add_argument("--model", default="", help="engine.model (default: the packaged SmolLM2-135M GGUF)")
    ap.add_argument("--random-init", type=Path, metavar="DIR",
                    help="random weights in the shape of DIR's config.json (with DIR's tokenizer): speed without real weights")
    ap.add_argument("--sdpa-order", help="SDPA kernel preference on CUDA, e.g. cudnn,flash,efficient,math")
    ap.add_argument("--cache-dir", type=Path, help="cache root for the warm load (default: a temporary one, cold first)")
    ap.add_argument("--backlogs", type=Path, help="directory of real backlogs for the rejection share")
    ap.add_argument("--jobs", type=int, default=12, help="proposal jobs on the real backlogs")
    ap.add_argument("--gen-tokens", type=int, default=48)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = ap.parse_args(argv)

    import torch
    import transformers

    from storytransformer.config import Config, EngineConfig
    from storytransformer.engine import hardware
    from storytransformer.engine.local import LocalEngine
    from storytransformer.engine.proposer import Proposer
    from storytransformer.formats import read_source

    ecfg = dict(device=args.device, dtype=args.dtype, attention=args.attention, quantization=args.quantization,
                model=args.model, max_new_tokens=args.gen_tokens)
    results: dict = {"date": time.strftime("%Y-%m-%d"), "cpu_count": os.cpu_count(),
                     "load_average_at_start": round(os.getloadavg()[0], 1),
                     "torch": torch.__version__, "transformers": transformers.__version__,
                     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "rows": {}}
    rows = results["rows"]
    if args.sdpa_order:
        hardware.SDPA_ORDER = tuple(args.sdpa_order.split(","))
        results["sdpa_order"] = args.sdpa_order
    tmp = Path(tempfile.mkdtemp(prefix="st-engine-bench-"))
    try:
        if args.random_init:
            ecfg["model"] = str(random_model(args.random_init, tmp / "random-model"))
            results["weights"] = f"random, in the shape of {args.random_init.name}"
        cache = args.cache_dir
        if cache is None:
            cache = tmp
            cold = LocalEngine(Config(engine=EngineConfig(**ecfg)), cache_root=cache)
            st, dt = timed(cold.load)
            rows["load_cold_s"] = round(dt, 2)
            rows["load_cold_from"] = st.loaded_from
            cold.unload()
            del cold
        eng = LocalEngine(Config(engine=EngineConfig(**ecfg, generate=False)), cache_root=cache)
        st, dt = timed(eng.load)
        rows.update(load_warm_s=round(dt, 2), load_warm_from=st.loaded_from, device=st.device, dtype=st.dtype,
                    attention=st.attention, quantization=st.quantization,
                    model_memory_mib=round((st.memory_bytes or 0) / 2**20, 1),
                    memory_saved_mib=None if st.memory_saved_bytes is None else round(st.memory_saved_bytes / 2**20, 1))

        eng.score(STORIES[:2])  # warm-up
        _, dt = timed(eng.score, STORIES)
        rows["score_stories_per_s"] = round(len(STORIES) / dt, 1)
        context = eng.render([{"role": "user", "content": "Rank this user story."}])
        _, dt = timed(eng.score, STORIES, context=context)
        rows["score_with_prompt_stories_per_s"] = round(len(STORIES) / dt, 1)

        msgs = [{"role": "user", "content": "Write a long story about a librarian."}]
        eng.generate(msgs, max_new_tokens=4, stop=())  # warm-up
        text, dt = timed(eng.generate, msgs, max_new_tokens=args.gen_tokens, stop=())
        n = eng.count_tokens(text)
        rows["generate_tokens"] = n
        rows["generate_tokens_per_s"] = round(n / dt, 1)

        times, accepted = [], 0
        gen = Proposer(Config(engine=EngineConfig(**ecfg, generate=True)), eng.backend)  # the loaded model, shared
        for a, b in PAIRS:
            sa, sb = read_source("b.txt", f"{a}\n{b}\n").stories
            found, dt = timed(gen.propose_merge, [sa, sb])
            times.append(dt)
            accepted += bool(found)
        rows["merge_proposal_s"] = round(sum(times) / len(times), 2)
        rows["merge_pairs_with_a_proposal"] = f"{accepted}/{len(PAIRS)}"
        eng.config.engine.generate = False
        found, dt = timed(eng.propose_merge, read_source("b.txt", f"{PAIRS[0][0]}\n{PAIRS[0][1]}\n").stories)
        rows["merge_proposal_no_generation_s"] = round(dt, 2)

        print(json.dumps(rows), flush=True)
        if args.backlogs:
            results["rejection"] = rejection_share(gen, args.backlogs, args.jobs)
        rows["peak_rss_mib"] = round(rss_mib(), 1)
        results["load_average_at_end"] = round(os.getloadavg()[0], 1)
        if torch.cuda.is_available() and st.device.startswith("cuda"):
            rows["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    suffix = "" if rows.get("device", "cpu") == "cpu" else "-" + rows["device"].split(":")[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"engine{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    md = to_markdown(results)
    (args.out / f"engine{suffix}.md").write_text(md)
    print(md)
    return 0


def random_model(shape: Path, target: Path) -> Path:
    """A safetensors directory with random weights in ``shape``'s architecture (tokenizer copied)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(str(shape))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(str(target))
    for f in shape.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template", "generation_config")):
            shutil.copy(f, target / f.name)
    return target


def rejection_share(engine, backlogs: Path, jobs: int) -> dict:
    """Proposals made and rejected on real backlogs: rewrite and split jobs on stories that have
    findings, and merges of duplicate pairs, spread over the files."""
    from storytransformer.lint import Linter
    from storytransformer.workspace import Workspace

    ws = Workspace.from_paths([backlogs], engine.config)
    findings = Linter(ws).check()
    stories = {s.id: s for s in ws.stories()}
    by_story: dict[str, list] = {}
    for f in findings:
        by_story.setdefault(f.story_id, []).append(f)
    picked = {"split": [], "rewrite": [], "merge": []}
    # round-robin over the files, so the jobs come from many backlogs, not the first one
    per_file: dict[str, list] = {}
    for sid, fs in sorted(by_story.items()):
        if sid in stories:
            per_file.setdefault(stories[sid].file, []).append((sid, fs))
    queues = [iter(v) for _, v in sorted(per_file.items())]
    ordered = []
    while queues:
        for q in list(queues):
            item = next(q, None)
            if item is None:
                queues.remove(q)
            else:
                ordered.append(item)
    for sid, fs in ordered:
        codes = {f.code[:3] for f in fs}
        if "ST2" in codes and len(picked["split"]) < jobs // 3 + 1:
            picked["split"].append((sid, fs))
        elif codes & {"ST1", "ST3", "ST5"} and len(picked["rewrite"]) < jobs // 3 + 1:
            picked["rewrite"].append((sid, fs))
        dup = next((f for f in fs if f.code in ("ST601", "ST602") and f.related), None)
        if dup and len(picked["merge"]) < jobs // 3 + 1:
            picked["merge"].append((sid, [dup]))
    out = {"jobs": 0, "proposals": 0, "rejected": 0, "jobs_with_accepted": 0, "by_kind": {}, "reasons": {}}
    t0 = time.perf_counter()
    for kind, items in picked.items():
        k = out["by_kind"].setdefault(kind, {"jobs": 0, "proposals": 0, "rejected": 0})
        for sid, fs in items:
            s = stories[sid]
            if kind == "merge":
                other = stories.get(fs[0].related[0].story_id)
                if other is None:
                    continue
                found = engine.propose_merge([s, other], include_rejected=True)
            elif kind == "split":
                found = engine.propose_split(s, fs, include_rejected=True)
            else:
                found = engine.propose_rewrite(s, fs, include_rejected=True)
            rej = [p for p in found if not p.accepted]
            for p in rej:
                for r in p.reasons:
                    key = r.split(":")[0][:60]
                    out["reasons"][key] = out["reasons"].get(key, 0) + 1
            for d in (out, k):
                d["jobs"] += 1
                d["proposals"] += len(found)
                d["rejected"] += len(rej)
            out["jobs_with_accepted"] += any(p.accepted for p in found)
            print(f"{kind} {sid}: {len(found)} proposals, {len(rej)} rejected", flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["rejected_share"] = round(out["rejected"] / max(out["proposals"], 1), 3)
    return out


def to_markdown(r: dict) -> str:
    lines = [f"# Engine benchmark ({r['date']})", "",
             f"torch {r['torch']}, transformers {r['transformers']}, {r['cpu_count']} CPUs"
             + (f", GPU {r['gpu']}" if r["gpu"] else "")
             + (f"; load average {r['load_average_at_start']} at the start, {r.get('load_average_at_end')} at the end"
                if "load_average_at_start" in r else ""), "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in r["rows"].items()]
    rej = r.get("rejection")
    if rej:
        lines += ["", "## Validation on real backlogs", "",
                  f"{rej['jobs']} jobs, {rej['proposals']} proposals, {rej['rejected']} rejected "
                  f"({rej['rejected_share']:.0%}); {rej['jobs_with_accepted']} jobs got an accepted proposal; "
                  f"{rej['seconds']} s.", "", "| kind | jobs | proposals | rejected |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['jobs']} | {v['proposals']} | {v['rejected']} |" for k, v in rej["by_kind"].items()]
        lines += ["", "| rejection reason | count |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(rej["reasons"].items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

"""The decode attention's launch plan (fastgen/triton_decode.py), swept on the GPU: per choice of warps,
positions a block, fewest positions a slice and programs aimed at, the time of one decoding step's
attention (28 layers, each its own cache, slices + merge, one CUDA graph) at 4k and 32k positions of a
32,832-position cache, the 7.6B shape (28 query heads, 4 key/value heads, head_dim 128, bf16).

Every choice is checked against the shipped plan's output (the same softmax, summed in another order:
within 1 % of the largest value) and timed in the same process, the shipped plan first and last (the
spread of those two is the run's noise). Prints a table and writes decode_attention_sweep.json under
``--out`` after every choice, so a run cut short keeps what it measured.

    python3 benchmarks/gpu/decode_attention_sweep.py --out DIR [--budget-s 400] [--shapes 4x64,8x128 --slices 16
        --targets 132,264 --stages default,2]
    TRITON_INTERPRET=1 python3 benchmarks/gpu/decode_attention_sweep.py --out DIR --tiny --shapes 4x64 --slices 16,64
        --targets 512   # CPU smoke test
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from storytransformer.engine.fastgen import triton_decode as td  # noqa: E402

KNOBS = ("WARPS", "BLOCK_N", "MIN_SLICE", "TARGET_PROGRAMS", "STAGES", "FP8_DOT", "FP8_LONG_BLOCK_N")


def shipped() -> dict:
    return {k: getattr(td, k) for k in KNOBS}


def grid(args) -> list[dict]:
    """Every combination of the listed choices (``--shapes`` pairs warps with positions a block)."""
    def ints(text: str) -> list:
        return [None if x == "default" else int(x) for x in text.split(",")]

    shapes = [tuple(int(x) for x in pair.split("x")) for pair in args.shapes.split(",")]
    # a plan's BLOCK_N is what it reads, whatever the cache's capacity (FP8_LONG_BLOCK_N off)
    out = [{"WARPS": w, "BLOCK_N": b, "MIN_SLICE": m, "TARGET_PROGRAMS": t, "STAGES": st, "FP8_DOT": dot,
            "FP8_LONG_BLOCK_N": None}
           for (w, b), m, t, st, dot in itertools.product(shapes, ints(args.slices), ints(args.targets),
                                                          ints(args.stages), args.fp8_dot.split(","))]
    return [c for c in out if c["MIN_SLICE"] % 16 == 0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--budget-s", type=float, default=400.0)
    ap.add_argument("--shapes", default="2x32,2x64,4x32,4x64,4x128,8x64,8x128",
                    help="warps x positions a block, comma-separated")
    ap.add_argument("--slices", default="16,64,256", help="fewest positions a slice takes (multiples of 16)")
    ap.add_argument("--targets", default="264,512,1056", help="programs aimed at")
    ap.add_argument("--stages", default="default", help="software pipelining stages ('default': Triton's)")
    ap.add_argument("--tiny", action="store_true", help="a small shape (CPU interpreter smoke test)")
    ap.add_argument("--replays", type=int, default=50)
    ap.add_argument("--fp8", action="store_true", help="the 8-bit cache (e4m3 keys and values, a scale a position)")
    ap.add_argument("--fp8-dot", default="f16", help="the 8-bit cache's product dtype: f16 (shipped), q (the query's: bf16)")
    ap.add_argument("--contexts", default="4096,32768", help="valid lengths timed (comma-separated)")
    ap.add_argument("--capacity", type=int, default=32768 + 64, help="positions of each layer's cache")
    args = ap.parse_args()
    t_end = time.monotonic() + args.budget_s
    dev = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    if args.tiny:
        layers, hq, hkv, d, capacity, contexts = 2, 4, 2, 32, 256, (64, 200)
    else:
        layers, hq, hkv, d = 28, 28, 4, 128
        capacity, contexts = args.capacity, tuple(int(x) for x in args.contexts.split(","))
    g = torch.Generator(device=dev).manual_seed(3)
    keys = [torch.randn(1, hkv, capacity, d, device=dev, dtype=torch.bfloat16, generator=g) for _ in range(layers)]
    values = [torch.randn(1, hkv, capacity, d, device=dev, dtype=torch.bfloat16, generator=g) for _ in range(layers)]
    scales = [None] * layers, [None] * layers
    if args.fp8:  # as kv_cache.py stores them: e4m3 values, one float32 scale per position and head
        def quantised(x):
            scale = x.float().abs().amax(-1).clamp(min=1e-6) / 448.0
            return (x.float() / scale[..., None]).to(torch.float8_e4m3fn), scale
        pairs = [quantised(x) for x in keys], [quantised(x) for x in values]
        keys, values = [k for k, _ in pairs[0]], [v for v, _ in pairs[1]]
        scales = [s for _, s in pairs[0]], [s for _, s in pairs[1]]
    q = torch.randn(1, hq, 1, d, device=dev, dtype=torch.bfloat16, generator=g)
    length = torch.tensor([contexts[0]], device=dev, dtype=torch.int32)
    base = shipped()
    rows: list[dict] = []
    result = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
              "torch": torch.__version__, "cache": "fp8" if args.fp8 else "bf16", "shape": {"layers": layers, "q_heads": hq, "kv_heads": hkv, "head_dim": d,
                                                     "capacity": capacity}, "shipped": base, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)

    def step():
        return [td.flash_decode(q, k, v, length, k_scale=ks, v_scale=vs)
                for k, v, ks, vs in zip(keys, values, *scales)]

    def measure(plan: dict) -> dict:
        for k, v in plan.items():
            setattr(td, k, v)
        try:
            row = {**plan}
            for ctx in contexts:
                length.fill_(ctx)
                outs = step()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        outs = step()
                    graph.replay()
                    torch.cuda.synchronize()
                    best = float("inf")
                    for _ in range(3):
                        t = time.perf_counter()
                        for _ in range(args.replays):
                            graph.replay()
                        torch.cuda.synchronize()
                        best = min(best, (time.perf_counter() - t) / args.replays * 1e6)
                    row[f"us_{ctx}"] = round(best, 1)
                row[f"out_{ctx}"] = torch.stack(outs).float().cpu()
            return row
        finally:
            for k, v in base.items():
                setattr(td, k, v)

    first = measure(base)
    reference = {k: v for k, v in first.items() if k.startswith("out_")}
    plans = [base] + [p for p in grid(args) if p != base] + [base]
    for n, plan in enumerate(plans):
        if time.monotonic() > t_end:
            result["cut_short"] = f"budget reached after {n} of {len(plans)} plans"
            break
        try:
            row = first if n == 0 else measure(plan)
        except Exception as e:  # noqa: BLE001 - a plan the compiler refuses (too many registers, ...)
            rows.append({**plan, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"})
            continue
        for ctx in contexts:
            ref, got = reference[f"out_{ctx}"], row.pop(f"out_{ctx}")
            err = ((got - ref).abs().max() / ref.abs().max()).item()
            row[f"err_{ctx}"] = round(err, 5)
            row["ok"] = row.get("ok", True) and err <= 0.01
        row["shipped"] = plan == base
        rows.append(row)
        print(json.dumps(row), flush=True)
        (args.out / "decode_attention_sweep.json").write_text(json.dumps(result, indent=1))
    if dev.type == "cuda":
        timed = [r for r in rows if "error" not in r and r.get("ok")]
        for ctx in contexts:
            best = sorted(timed, key=lambda r: r[f"us_{ctx}"])[:5]
            print(f"\nfastest at {ctx} (us for {layers} layers; shipped: "
                  f"{', '.join(str(r[f'us_{ctx}']) for r in rows if r.get('shipped'))})")
            for r in best:
                print("  ", {k: r[k] for k in KNOBS}, *(r[f"us_{c}"] for c in contexts))
    (args.out / "decode_attention_sweep.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

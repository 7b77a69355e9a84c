"""4-bit weights on the GPU (issue 18, point 1): per matrix of the 7.6B shape and 1, 4 or 8 activation
rows, bf16 torch.matmul against the fused int4 decode kernel and bitsandbytes NF4, beside the bytes-read
bound from the copy bandwidth measured in the same run; a loads-only floor (the decode grid streaming the
packed words with no arithmetic: how much of the gap is the access pattern); the whole layer stack (28
layers x the model's matrices) estimated from the per-matrix times and measured in one CUDA graph;
prefill products; and,
last, the whole fastgen model decoding at 4k and 32k context with bf16 and with int4 weights: the decoder
layers' matrices alone, then with w2 making SwiGLU itself (``fuse_swiglu``), with the output head in int4 too
(``head``) and with both, in the same run; and how far the int4 head moves the next-token distributions.

Each matrix is timed inside a CUDA graph over enough distinct copies of its weight that the copies do
not fit in the L2 cache: the weights stream from memory as they do in a real decoding step. Prints a
table and writes int4_bench.json (after every section, so a run cut short keeps what it measured).

    python3 benchmarks/gpu/int4_bench.py --out DIR [--sweep] [--budget-s 150]
    python3 benchmarks/gpu/int4_bench.py --out DIR --sweep --sweep-rows 1 --sweep-matrices head,w2+swiglu \
        --sections checks,sweep,head,model   # the int4 head and the fused SwiGLU (docs/benchmarks/gpu_int4.md)
    python3 benchmarks/gpu/int4_bench.py --out DIR --sections checks,breakdown,model \
        --bf16-variants bf16,bf16+torch_merge --model-variants int4+head,int4+head+torch_merge
                                             # where a decoding step's time goes, kernel by kernel
    TRITON_INTERPRET=1 python3 benchmarks/gpu/int4_bench.py --tiny --out DIR   # CPU smoke test of the code

``breakdown``: each decoding format of the model section is also profiled (torch.profiler over a few replays
of its captured CUDA graph): every kernel's time per token, grouped into stages (int4 products, attention
slices and their merge, norms, rotary + cache write, SwiGLU, the rest), beside the timed ms/token; the gap
between the two is what the GPU spends between kernels. A variant ending in ``+torch_merge`` decodes with
the attention slices merged by the earlier nine torch kernels instead of the one Triton kernel; one with
``+capacity_splits`` cuts the cache capacity into the attention slices (the earlier plan) instead of the
valid length. Both together are the decoding step as it was until 2026-12-04. One ending in ``+no_pdl``
launches every Triton kernel without programmatic dependent launch (fastgen/pdl.py), as until 2026-12-04;
one with ``+normN`` runs the norms with N warps (4 otherwise); one with ``+programsN`` aims the attention slices at N
programs (the plan until 2026-12-04 was 512; now two a multiprocessor, ``triton_decode.programs_for``); one
with ``+fp8q`` (beside ``+fp8kv``) makes the 8-bit cache's attention products in bf16, as until 2026-12-04,
instead of float16 (``triton_decode.FP8_DOT``).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[2]
MB = 1e6

LAYERS = 28
# (name, out_features N, in_features K, bias): the fastgen model's fused matrices, then the separate ones
FUSED = [("wqkv", 4608, 3584, True), ("wo", 3584, 3584, False), ("w13", 37888, 3584, False),
         ("w2", 3584, 18944, False)]
SEPARATE = [("q", 3584, 3584, True), ("k", 512, 3584, True), ("v", 512, 3584, True), ("o", 3584, 3584, False),
            ("gate", 18944, 3584, False), ("up", 18944, 3584, False), ("down", 3584, 18944, False)]
ROWS = (1, 4, 8)
HEAD = ("head", 152064, 3584, False)  # the output head (vocabulary x hidden), int4 only with head=True
MODEL_VARIANTS = "int4,int4+swiglu,int4+glu,int4+head,int4+head+glu"
# kernel name fragments -> the stage of a decoding step they belong to (first match wins)
STAGES = (("int4 products", ("_decode_kernel", "_sum_splits_kernel")),
          ("attention slices", ("_split_kernel",)),
          ("attention merge", ("_merge_kernel",)),
          ("rms norm (+ residual add)", ("_rms_norm_kernel",)),
          ("qkv rotary + cache write", ("_qkv_rotary_kernel",)),
          ("silu_mul", ("_silu_mul_kernel",)),
          ("bf16 products (cuBLAS)", ("gemv", "gemm", "cutlass", "nvjet", "sm90_", "splitKreduce")),
          ("torch elementwise / reductions", ("elementwise", "reduce_kernel", "index", "Reduce", "copy")))


def stage_of(name: str) -> str:
    for stage, parts in STAGES:
        if any(p in name for p in parts):
            return stage
    return "other"


def summarize_kernels(events: list[tuple[str, float]], reps: int, step_ms: float | None) -> dict:
    """(kernel name, microseconds) of ``reps`` decoding steps -> per step: every kernel name's count and time,
    the stages' totals and their share of the timed step (``step_ms``; of the kernels' busy time without it)."""
    per: dict[str, list[float]] = {}
    for name, us in events:
        row = per.setdefault(name, [0, 0.0])
        row[0] += 1
        row[1] += us
    busy = sum(us for _, us in events) / reps
    whole = step_ms * 1e3 if step_ms else busy
    kernels = sorted(({"name": n[:120], "stage": stage_of(n), "per_step": c / reps, "us_per_step": t / reps,
                       "share": t / reps / whole} for n, (c, t) in per.items()), key=lambda r: -r["us_per_step"])
    stages: dict[str, dict] = {}
    for k in kernels:
        row = stages.setdefault(k["stage"], {"stage": k["stage"], "kernels_per_step": 0.0, "us_per_step": 0.0})
        row["kernels_per_step"] += k["per_step"]
        row["us_per_step"] += k["us_per_step"]
    for row in stages.values():
        row["share"] = row["us_per_step"] / whole
    out = {"reps": reps, "kernels_per_step": len(events) / reps, "busy_us_per_step": busy,
           "stages": sorted(stages.values(), key=lambda r: -r["us_per_step"]), "kernels": kernels}
    if step_ms:
        out["step_us"] = step_ms * 1e3
        out["between_kernels_us_per_step"] = step_ms * 1e3 - busy
        out["between_kernels_share"] = 1 - busy / (step_ms * 1e3)
    return out
# --tiny: the same code on small shapes on the CPU (Triton's interpreter), to check the script itself
TINY_FUSED = [("wqkv", 160, 256, True), ("wo", 128, 128, False), ("w13", 256, 128, False), ("w2", 128, 256, False)]
TINY_HEAD = ("head", 256, 128, False)


def _truncated_silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up as Triton's interpreter makes it inside the fused kernel: each float32 -> bf16 step
    truncated, not rounded (tests/engine_fastgen/test_int4.py checks the kernel the same way)."""
    def trunc(v):
        return (v.float().view(torch.int32) & ~0xFFFF).view(torch.float32)

    gate, up = gate_up.float().chunk(2, dim=-1)
    return trunc(trunc(gate / (1 + torch.exp(-gate))) * up).to(torch.bfloat16)


def load_modules():
    sys.path.insert(0, str(ROOT))
    try:
        from storytransformer.engine.fastgen import int4, triton_int4
    except ImportError as exc:  # the project's other dependencies missing: fastgen on its own
        print(f"note: project import failed ({exc}); loading fastgen on its own", file=sys.stderr)
        sys.path.insert(0, str(ROOT / "storytransformer" / "engine"))
        from fastgen import int4, triton_int4  # type: ignore[no-redef]
    return int4, triton_int4


class Bench:
    def __init__(self, args):
        self.args, self.t0 = args, time.perf_counter()
        self.int4, self.ti = load_modules()
        self.dev = torch.device("cpu" if args.tiny else "cuda")
        self.fused = TINY_FUSED if args.tiny else FUSED
        self.separate = [] if args.tiny else SEPARATE
        self.head_shape = TINY_HEAD if args.tiny else HEAD
        self.layers = 2 if args.tiny else LAYERS
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        device = "cpu (--tiny)" if args.tiny else torch.cuda.get_device_name()
        command = " ".join("OUT" if a == args.out else a for a in sys.argv)  # no machine path in the results
        self.result = {"device": device, "torch": torch.__version__, "triton": __import__("triton").__version__,
                       "command": command,
                       "checks": [], "sweep": [], "matrices": [], "stack": [], "prefill": [], "model": [], "breakdown": [],
                       "head_accuracy": [], "notes": []}
        try:
            import bitsandbytes as bnb
            self.bnb = bnb
            self.result["bitsandbytes"] = bnb.__version__
        except Exception as exc:  # noqa: BLE001
            self.bnb = None
            self.result["notes"].append(f"bitsandbytes unavailable: {exc}")
        self.best: dict[tuple[int, int, int], object] = {}
        self.want_breakdown = False

    def left(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.t0)

    def save(self) -> None:
        (self.out / "int4_bench.json").write_text(json.dumps(self.result, indent=1, default=str))

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", flush=True)

    # ---- timing -------------------------------------------------------------------------------------
    def sync(self) -> None:
        if self.dev.type == "cuda":
            torch.cuda.synchronize()

    def graph_ms(self, calls, reps: int = 10) -> tuple[float, bool]:
        """ms per call of the ``calls`` (one product each, distinct weights) replayed from a CUDA graph;
        (eager time, False) when capture fails."""
        if self.dev.type != "cuda":
            t = time.perf_counter()
            for c in calls:
                c()
            return (time.perf_counter() - t) * 1e3 / len(calls), False
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for c in calls:
                c()
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        graph = None
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for c in calls:
                    c()
            run = graph.replay
        except Exception:  # noqa: BLE001 - time op by op instead
            graph = None
            torch.cuda.synchronize()

            def run():
                for c in calls:
                    c()
        run()
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            run()
        b.record()
        torch.cuda.synchronize()
        ms = a.elapsed_time(b) / reps / len(calls)
        used_graph = graph is not None
        del graph
        return ms, used_graph

    def copies(self, nbytes: int) -> int:
        return max(2, min(256, math.ceil(self.args.stream_mb * MB / nbytes)))

    # ---- sections -----------------------------------------------------------------------------------
    def bandwidth(self) -> None:
        if self.dev.type != "cuda":
            self.bw = 1e10
            return
        n = 2 ** 31
        src = torch.empty(n, dtype=torch.uint8, device=self.dev)
        dst = torch.empty_like(src)
        dst.copy_(src)
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(10):
            dst.copy_(src)
        b.record()
        torch.cuda.synchronize()
        s = a.elapsed_time(b) / 10 / 1e3
        self.bw = 2 * n / s  # bytes read + written per second, as docs/benchmarks/gpu.md counts it
        self.result["copy_bandwidth_bytes_per_s"] = self.bw
        self.log(f"copy bandwidth {self.bw / 1e9:,.0f} GB/s (read + write)")
        del src, dst

    def weight(self, n: int, k: int, seed: int) -> torch.Tensor:
        g = torch.Generator(device=self.dev).manual_seed(seed)
        return (torch.randn(n, k, device=self.dev, generator=g) * 0.02).to(torch.bfloat16)

    def checks(self) -> None:
        """The kernels on this GPU against the plain-torch reference (dequantise, then float32 product)."""
        g = torch.Generator(device=self.dev).manual_seed(1)
        for name, n, k, bias in self.fused:
            w = self.weight(n, k, 7)
            qw, s, z = self.int4.quantize_int4(w, 128)
            ref_w = self.int4.dequantize_int4(qw, s, z, 128)
            b = (torch.randn(n, device=self.dev, generator=g) * 0.1).to(torch.bfloat16) if bias else None
            rel_q = ((ref_w - w.float()).norm() / w.float().norm()).item()
            for m in (1, 2, 3, 4, 5, 8, 300):
                x = torch.randn(m, k, device=self.dev, generator=g).to(torch.bfloat16)
                want = x.float() @ ref_w.T + (b.float() if b is not None else 0)
                variants = [None]
                if m <= 8:  # the new tiles explicitly too: masked planes, the fused split sum (1, 4, 8 rows)
                    DC = self.ti.DecodeConfig
                    variants += ([DC(False, 64, 1, masked=True), DC(False, 128, 2, masked=True, fused_sum=True),
                                  DC(False, 128, 2, planes=True, fused_sum=True),
                                  DC(False, 128, 2, planes=True, masked=True, fused_sum=True),
                                  # two codes an instruction (inline PTX): bf16x2 (1 to 3), f16x2 (4, 5)
                                  DC(False, 128, 2, fused_sum=True, packed=1),
                                  DC(False, 128, 2, fused_sum=True, packed=2),
                                  DC(False, 128, 2, fused_sum=True, packed=3), DC(False, 64, 1, packed=3),
                                  DC(False, 128, 2, fused_sum=True, packed=4),
                                  DC(False, 128, 4, fused_sum=True, packed=5),
                                  DC(False, 64, 3, packed=5), DC(False, 256, 1, 8, fused_sum=True, packed=1)] +
                                 ([DC(False, 128, 2, fused_sum=True, packed=6), DC(False, 64, 3, 2, packed=6)]
                                  if "6" in self.args.packed.split(",") else []) if m == 1 else
                                 [DC(False, 128, 2, fused_sum=True, packed=1)] if m in (2, 3, 5) else  # portable twin
                                 [DC(True, 128, 1, fused_sum=True)] if m in (4, 8) else [])
                for cfg in variants:
                    for repeat in range(3 if cfg is not None else 1):  # fused sum: counters reset each call
                        if cfg is not None and cfg.packed and m == 1 and not self.ti.packed_supported(x.device):
                            note = "packed tiles not checked: no inline PTX on this device"
                            if note not in self.result["notes"]:
                                self.result["notes"].append(note)
                            break
                        if m <= 8:
                            got = self.ti.int4_decode(x, qw, s, z, 128, b, config=cfg)
                        else:
                            got = self.ti.int4_prefill(x, qw, s, z, 128, b)
                        err = ((got.float() - want).abs().max() / want.abs().max()).item()
                        row = {"matrix": name, "rows": m, "max_err_rel": err, "quant_err_rel": rel_q, "ok": err < 1e-2,
                               "config": cfg.__dict__ if cfg is not None else "tuned", "repeat": repeat}
                        if cfg is not None and cfg.packed and m == 1 and repeat == 0:
                            # f16 products: activations far from 1 (large ones must not overflow, small ones
                            # keep their precision)
                            for scale in (1e-3, 1e4):
                                xs_ = x * scale
                                got_s = self.ti.int4_decode(xs_, qw, s, z, 128, None, config=cfg).float()
                                want_s = xs_.float() @ ref_w.T
                                e = ((got_s - want_s).abs().max() / want_s.abs().max()).item()
                                row[f"max_err_rel_x{scale:g}"] = e
                                row["ok"] = row["ok"] and e < 1e-2 and bool(torch.isfinite(got_s).all())
                        self.result["checks"].append(row)
                        if not row["ok"]:
                            self.log(f"CHECK FAILED {row}")
            del w, qw, s, z, ref_w
        self.check_swiglu_and_head(g)
        ok = all(r["ok"] for r in self.result["checks"])
        self.log(f"correctness on the GPU: {'all ok' if ok else 'FAILURES'} "
                 f"({len(self.result['checks'])} cases; quantisation error {rel_q:.3f} of the weight norm)")
        self.save()

    def check_swiglu_and_head(self, g) -> None:
        """w2 taking w13's output [gate | up] (swiglu=True) against silu_mul then the plain-torch reference
        (1 % of the largest output) and against the unfused kernel on silu_mul's output (the same activations:
        1e-3), 1 to 8 rows, the tuned tiles and a few others; the output head's shape at one row."""
        name, n, k, _ = [f for f in self.fused if f[0] == "w2"][0]
        silu_mul = self._silu_mul()
        w = self.weight(n, k, 17)
        qw, s, z = self.int4.quantize_int4(w, 128)
        ref_w = self.int4.dequantize_int4(qw, s, z, 128)
        DC = self.ti.DecodeConfig
        for m in (1, 2, 4, 8):
            gate_up = torch.randn(m, 2 * k, device=self.dev, generator=g).to(torch.bfloat16) * 2
            act = silu_mul(gate_up)
            want = act.float() @ ref_w.T
            if self.args.tiny:  # Triton's interpreter truncates float32 to bf16 where the GPU rounds to nearest:
                act = _truncated_silu_mul(gate_up)  # the unfused kernel gets the activations the fused one makes
            variants = [None] + ([DC(False, 64, 2, fused_sum=True, packed=4), DC(False, 128, 4, packed=5),
                                  DC(False, 64, 1, planes=True, masked=True, fused_sum=True)] if m == 1 else
                                 [DC(True, 128, 1, fused_sum=True)])
            for cfg in variants:
                for repeat in range(2):
                    got = self.ti.int4_decode(gate_up, qw, s, z, 128, config=cfg, swiglu=True).float()
                    plain = self.ti.int4_decode(act, qw, s, z, 128, config=cfg).float()
                    err = ((got - want).abs().max() / want.abs().max()).item()
                    same = ((got - plain).abs().max() / want.abs().max()).item()
                    row = {"matrix": f"{name} (swiglu)", "rows": m, "max_err_rel": err, "vs_unfused_rel": same,
                           "ok": err < (2e-2 if self.args.tiny else 1e-2) and same < 1e-3
                           and bool(torch.isfinite(got).all()),
                           "config": cfg.__dict__ if cfg is not None else "tuned", "repeat": repeat}
                    self.result["checks"].append(row)
                    if not row["ok"]:
                        self.log(f"CHECK FAILED {row}")
        del w, qw, s, z, ref_w
        name, n, k, _ = self.head_shape
        w = self.weight(n, k, 19)
        qw, s, z = self.int4.quantize_int4(w, 128)
        ref_w = self.int4.dequantize_int4(qw, s, z, 128)
        for m in (1, 8):
            x = torch.randn(m, k, device=self.dev, generator=g).to(torch.bfloat16)
            want = x.float() @ ref_w.T
            for repeat in range(2):
                got = self.ti.int4_decode(x, qw, s, z, 128).float()
                err = ((got - want).abs().max() / want.abs().max()).item()
                self.result["checks"].append({"matrix": name, "rows": m, "max_err_rel": err, "ok": err < 1e-2,
                                              "config": "tuned", "repeat": repeat})
        del w, qw, s, z, ref_w

    def _silu_mul(self):
        from importlib import import_module
        return import_module(self.int4.__package__ + ".stages").silu_mul  # plain torch: the reference

    def int4_copies(self, n: int, k: int, count: int):
        w = self.weight(n, k, 11)
        qw, s, z = self.int4.quantize_int4(w, 128)
        del w
        return [(qw.clone(), s.clone(), z.clone()) for _ in range(count)]

    def sweep(self) -> None:
        """Tiles of the decode kernel per matrix and row count; the fastest becomes that case's tile."""
        DC = self.ti.DecodeConfig
        P = dict(planes=True)
        MA, F, MF = dict(masked=True), dict(fused_sum=True), dict(masked=True, fused_sum=True)
        many = [DC(True, 128, 0, 8), DC(True, 64), DC(True, 64, 1), DC(True, 128, 1), DC(True, 128, 2),
                DC(True, 64, **P), DC(True, 128, **P), DC(True, 64, 1, **P), DC(True, 128, 2, **P),
                DC(True, 128, 1, 8, **P),
                DC(True, 128, 0, 8, **F), DC(True, 128, 1, **F), DC(True, 64, 1, **F), DC(True, 128, 1, 8, **P, **F)]
        PM, PMF = dict(planes=True, masked=True), dict(planes=True, masked=True, fused_sum=True)
        cands = {1: [DC(False, 128, **P), DC(False, 64, 1, **P), DC(False, 128, 2, **P), DC(False, 256, **P),
                     # masked planes (about 3 instructions a weight instead of 4) and the one-launch fused split sum
                     DC(False, 128, 2, **MA), DC(False, 128, 2, **MF),
                     DC(False, 128, 2, **P, **F), DC(False, 64, 1, **P, **F), DC(False, 256, 0, **P, **F),
                     DC(False, 128, 2, **PM), DC(False, 64, 1, **PM),
                     DC(False, 128, 2, **PMF), DC(False, 64, 1, **PMF), DC(False, 256, 0, **PMF),
                     DC(False, 256, 2, **PMF), DC(False, 128, 1, **PMF), DC(False, 256, 2, 8, **PMF),
                     DC(False, 64, 2, **PMF), DC(False, 128, 4, **PMF)],
                 4: many, 8: many}
        if self.dev.type == "cuda" and self.ti.packed_supported(self.dev):  # two codes an instruction, one row
            # f16x2 products only (4: min term per block, 5: per word, 6: quarters added in f16x2): as accurate as
            # the float32 tiles; the bf16x2 ones (1 to 3) were as fast and less accurate (docs/benchmarks/gpu_int4.md)
            PK = [dict(fused_sum=True, packed=v) for v in self.args.packed.split(",") for v in [int(v)]]
            cands[1] = ([DC(False, 128, 2, **P, **F), DC(False, 64, 1, **P, **F), DC(False, 64, 1, **PMF)] +
                        [DC(False, bn, bps, w, st, **pk) for pk in PK for bn, bps, w, st in packed_tiles(self.args)])
        rows = [int(r) for r in self.args.sweep_rows.split(",")]
        t0 = time.perf_counter()
        for m in rows:  # rows first: one row (batch-1 decoding, the target) is swept for every matrix first
            seen = set()
            names = set(self.args.sweep_matrices.split(",")) if self.args.sweep_matrices else None
            w2 = [(f[0] + "+swiglu",) + f[1:] for f in self.fused if f[0] == "w2"]
            for name, n, k, bias in self.fused + self.separate + [self.head_shape] + w2:
                if names is not None and name not in names:
                    continue
                swiglu = name.endswith("+swiglu")  # w2 taking [gate | up]: its own tile table
                if (n, k, swiglu) in seen:  # q and o have wo's shape, v has k's, up has gate's, down has w2's
                    continue
                seen.add((n, k, swiglu))
                if self.left() < self.args.reserve_s or time.perf_counter() - t0 > self.args.sweep_s:
                    self.result["notes"].append(f"sweep cut short by the time budget before {name} rows {m}")
                    return
                reps = self.int4_copies(n, k, self.copies(n * k // 2))
                g = torch.Generator(device=self.dev).manual_seed(2)
                x = torch.randn(m, 2 * k if swiglu else k, device=self.dev, generator=g).to(torch.bfloat16)
                act = self._silu_mul()(x) if swiglu else x
                ref = act.float() @ self.int4.dequantize_int4(*reps[0], 128).T
                best = None
                for cfg in cands[m]:
                    try:
                        y = self.ti.int4_decode(x, *reps[0], 128, config=cfg, swiglu=swiglu).float()
                        if (y - ref).abs().max() > 1e-2 * ref.abs().max():
                            raise AssertionError("differs from the reference tile")
                        ms, _ = self.graph_ms([lambda r=r, cfg=cfg: self.ti.int4_decode(x, *r, 128, config=cfg,
                                                                                       swiglu=swiglu)
                                               for r in reps])
                        y = self.ti.int4_decode(x, *reps[0], 128, config=cfg, swiglu=swiglu).float()  # after replays
                        if (y - ref).abs().max() > 1e-2 * ref.abs().max():
                            raise AssertionError("differs from the reference after the timed replays")
                    except Exception as exc:  # noqa: BLE001
                        self.result["sweep"].append({"matrix": name, "rows": m, "config": cfg.__dict__,
                                                     "error": f"{type(exc).__name__}: {str(exc)[:160]}"})
                        continue
                    self.result["sweep"].append({"matrix": name, "rows": m, "config": cfg.__dict__, "ms": ms})
                    if best is None or ms < best[0]:
                        best = (ms, cfg)
                if best and swiglu:
                    self.ti.TUNED_SWIGLU[(m, n, k)] = best[1]  # Int4Linear.swiglu in the model section uses it
                    self.log(f"sweep {name} rows {m}: best {best[1]} {best[0] * 1e3:.1f} us")
                elif best:
                    self.best[(m, n, k)] = best[1]
                    self.ti.TUNED[(m, n, k)] = best[1]  # Int4Linear in the model section uses it too
                    self.log(f"sweep {name} rows {m}: best {best[1]} {best[0] * 1e3:.1f} us")
                del reps
                if self.dev.type == "cuda":
                    torch.cuda.empty_cache()
                self.save()

    def floor(self) -> None:
        """What the packed weights cost to stream alone in the decode kernel's access pattern (the same tile
        and split grid, every word loaded and summed as an integer, no dequantisation, no activations): the
        gap between this and the decode time is the kernel's arithmetic, the gap to the bound its access."""
        import triton
        import triton.language as tl

        @triton.jit
        def stream_kernel(QW, OUT, N, BLOCKS: tl.constexpr, BLOCK_N: tl.constexpr, BPS: tl.constexpr):
            pid_n, split = tl.program_id(0), tl.program_id(1)
            offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
            offs_i = tl.arange(0, 16)
            acc = tl.zeros((16, BLOCK_N), tl.int32)
            for bi in range(BPS):
                b = split * BPS + bi
                acc += tl.load(QW + (b * 16 + offs_i)[:, None] * N + offs_n[None, :],
                               mask=(b < BLOCKS) & (offs_n < N)[None, :], other=0)
            tl.store(OUT + split * N + offs_n, tl.sum(acc, 0), mask=offs_n < N)

        for name, n, k, bias in self.fused:
            reps = self.int4_copies(n, k, self.copies(n * k // 2))
            bound = sum(t.numel() * t.element_size() for t in reps[0]) / self.bw * 1e3
            for bn, bps in ((64, 1), (128, 1), (128, 2), (256, 2), (128, 4)):
                splits = triton.cdiv(k // 128, bps)
                out = torch.empty(splits, n, dtype=torch.int32, device=self.dev)
                grid = (triton.cdiv(n, bn), splits)
                ms, _ = self.graph_ms([lambda r=r: stream_kernel[grid](r[0], out, n, BLOCKS=k // 128, BLOCK_N=bn,
                                                                       BPS=bps) for r in reps])
                self.result.setdefault("floor", []).append(
                    {"matrix": name, "n": n, "k": k, "block_n": bn, "blocks_per_split": bps, "ms": ms,
                     "int4_bound_ms": bound, "x_bound": ms / bound})
                self.log(f"floor {name} BN {bn} bps {bps}: {ms * 1e3:.1f} us (bound {bound * 1e3:.1f} us)")
            del reps
            torch.cuda.empty_cache()
            self.save()

    def config(self, m, n, k):
        return self.best.get((m, n, k)) or self.ti.decode_config(m, n, k)

    def matrices(self) -> None:
        for name, n, k, bias in self.fused + self.separate:
            if self.left() < self.args.reserve_s:
                self.result["notes"].append(f"matrix table cut short before {name}")
                return
            g = torch.Generator(device=self.dev).manual_seed(3)
            b = (torch.randn(n, device=self.dev, generator=g) * 0.1).to(torch.bfloat16) if bias else None
            w = self.weight(n, k, 5)
            bf = [w.clone() for _ in range(self.copies(n * k * 2))]
            q4 = self.int4_copies(n, k, self.copies(n * k // 2))
            i4_bytes = sum(t.numel() * t.element_size() for t in q4[0])
            nf = []
            if self.bnb is not None:
                for _ in range(self.copies(n * k // 2)):
                    nf.append(self.bnb.functional.quantize_4bit(w, blocksize=64, quant_type="nf4",
                                                                compress_statistics=False))
            del w
            for m in ROWS:
                x = torch.randn(m, k, device=self.dev, generator=g).to(torch.bfloat16)
                cfg = self.config(m, n, k)
                row = {"matrix": name, "n": n, "k": k, "rows": m, "config": cfg.__dict__,
                       "bf16_bytes": n * k * 2, "int4_bytes": i4_bytes,
                       "bf16_bound_ms": n * k * 2 / self.bw * 1e3, "int4_bound_ms": i4_bytes / self.bw * 1e3}
                row["bf16_ms"], row["bf16_graph"] = self.graph_ms([lambda w=w: F.linear(x, w, b) for w in bf])
                row["int4_ms"], row["int4_graph"] = self.graph_ms(
                    [lambda r=r: self.ti.int4_decode(x, *r, 128, b, config=cfg) for r in q4])
                if nf:
                    try:
                        row["nf4_ms"], row["nf4_graph"] = self.graph_ms(
                            [lambda p=p, st=st: self.bnb.matmul_4bit(x, p.t(), bias=b, quant_state=st)
                             for p, st in nf])
                    except Exception as exc:  # noqa: BLE001
                        row["nf4_error"] = f"{type(exc).__name__}: {str(exc)[:160]}"
                row["speedup_vs_bf16"] = row["bf16_ms"] / row["int4_ms"]
                row["int4_x_bound"] = row["int4_ms"] / row["int4_bound_ms"]
                self.result["matrices"].append(row)
            del bf, q4, nf
            torch.cuda.empty_cache()
            self.save()
        rows = self.result["matrices"]
        for group, names in (("fused (the fastgen model's 4 products)", [f[0] for f in self.fused]),
                             ("separate (q, k, v, o, gate, up, down)", [s[0] for s in self.separate])):
            for m in ROWS:
                sel = [r for r in rows if r["matrix"] in names and r["rows"] == m]
                if not names or len(sel) != len(names):
                    continue
                est = {"estimate": group, "rows": m}
                for key in ("bf16_ms", "int4_ms", "nf4_ms", "bf16_bound_ms", "int4_bound_ms"):
                    if all(key in r for r in sel):
                        est[key] = self.layers * sum(r[key] for r in sel)
                self.result["stack"].append(est)
        self.save()

    def head(self) -> None:
        """The output head's product at one row (bf16 against int4 with its tuned or default tile), weights
        streamed from memory as in matrices(); rows in the same table."""
        name, n, k, _ = self.head_shape
        w = self.weight(n, k, 21)
        bf = [w.clone() for _ in range(self.copies(n * k * 2))]
        q4 = self.int4_copies(n, k, self.copies(n * k // 2))
        del w
        i4_bytes = sum(t.numel() * t.element_size() for t in q4[0])
        x = torch.randn(1, k, device=self.dev, generator=torch.Generator(device=self.dev).manual_seed(8)).to(
            torch.bfloat16)
        cfg = self.config(1, n, k)
        row = {"matrix": name, "n": n, "k": k, "rows": 1, "config": cfg.__dict__, "bf16_bytes": n * k * 2,
               "int4_bytes": i4_bytes, "bf16_bound_ms": n * k * 2 / self.bw * 1e3,
               "int4_bound_ms": i4_bytes / self.bw * 1e3}
        row["bf16_ms"], row["bf16_graph"] = self.graph_ms([lambda w=w: F.linear(x, w) for w in bf])
        row["int4_ms"], row["int4_graph"] = self.graph_ms(
            [lambda r=r: self.ti.int4_decode(x, *r, 128, config=cfg) for r in q4])
        row["speedup_vs_bf16"] = row["bf16_ms"] / row["int4_ms"]
        row["int4_x_bound"] = row["int4_ms"] / row["int4_bound_ms"]
        self.result["matrices"].append(row)
        self.log(f"head at one row: bf16 {row['bf16_ms'] * 1e3:.1f} us, int4 {row['int4_ms'] * 1e3:.1f} us "
                 f"(bound {row['int4_bound_ms'] * 1e3:.1f} us) with {cfg}")
        del bf, q4
        if self.dev.type == "cuda":
            torch.cuda.empty_cache()
        self.save()

    def stack(self) -> None:
        """All 28 layers' fused matrices, distinct weights, one graph per format and row count."""
        if self.left() < self.args.reserve_s + 20:
            self.result["notes"].append("measured layer stack skipped: time budget")
            return
        formats = {"bf16": [], "int4": [], "nf4": []}
        for layer in range(self.layers):
            for name, n, k, bias in self.fused:
                w = self.weight(n, k, 100 + layer)
                formats["int4"].append(self.int4.quantize_int4(w, 128))
                if self.bnb is not None:
                    formats["nf4"].append(self.bnb.functional.quantize_4bit(w, blocksize=64, quant_type="nf4",
                                                                            compress_statistics=False))
                formats["bf16"].append(w)
        g = torch.Generator(device=self.dev).manual_seed(4)
        shapes = [(n, k) for _ in range(self.layers) for _, n, k, _ in self.fused]
        for m in ROWS:
            xs = {k: torch.randn(m, k, device=self.dev, generator=g).to(torch.bfloat16) for _, k in set(shapes)}
            row = {"measured": f"{self.layers} layers x wqkv, wo, w13, w2 in one CUDA graph", "rows": m}
            row["bf16_ms"] = self.graph_ms([lambda w=w, k=k: F.linear(xs[k], w)
                                            for w, (n, k) in zip(formats["bf16"], shapes)], reps=5)[0] * len(shapes)
            int4_calls = [lambda r=r, n=n, k=k: self.ti.int4_decode(xs[k], *r, 128, config=self.config(m, n, k))
                          for r, (n, k) in zip(formats["int4"], shapes)]
            row["int4_ms"] = self.graph_ms(int4_calls, reps=5)[0] * len(shapes)
            if formats["nf4"]:
                nf4_calls = [lambda p=p, st=st, k=k: self.bnb.matmul_4bit(xs[k], p.t(), quant_state=st)
                             for (p, st), (n, k) in zip(formats["nf4"], shapes)]
                row["nf4_ms"] = self.graph_ms(nf4_calls, reps=5)[0] * len(shapes)
            int4_bytes = sum(sum(t.numel() * t.element_size() for t in r) for r in formats["int4"])
            row["int4_bound_ms"] = int4_bytes / self.bw * 1e3
            row["bf16_bound_ms"] = sum(w.numel() * 2 for w in formats["bf16"]) / self.bw * 1e3
            self.result["stack"].append(row)
            self.log(f"stack rows {m}: bf16 {row['bf16_ms']:.3f} ms, int4 {row['int4_ms']:.3f} ms "
                     f"(bound {row['int4_bound_ms']:.3f}), nf4 {row.get('nf4_ms', float('nan')):.3f} ms")
            self.save()
        del formats
        torch.cuda.empty_cache()

    def prefill(self) -> None:
        g = torch.Generator(device=self.dev).manual_seed(5)
        for name, n, k, bias in self.fused:
            if self.left() < self.args.reserve_s:
                return
            w = self.weight(n, k, 9)
            r = self.int4.quantize_int4(w, 128)
            for m in (32, 64) if self.args.tiny else (512, 4096):
                x = torch.randn(m, k, device=self.dev, generator=g).to(torch.bfloat16)
                bf = self.graph_ms([lambda: F.linear(x, w)] * 3, reps=5)[0]
                i4 = self.graph_ms([lambda: self.ti.int4_prefill(x, *r, 128)] * 3, reps=5)[0]
                dq = self.graph_ms([lambda: self.ti.int4_dequantize_t(*r, 128)] * 3, reps=5)[0]
                self.result["prefill"].append({"matrix": name, "rows": m, "bf16_ms": bf, "int4_ms": i4,
                                               "dequantize_ms": dq, "int4_over_bf16": i4 / bf,
                                               "bf16_tflops": 2 * m * n * k / bf / 1e9})
            del w, r
        self.save()

    def breakdown(self) -> None:
        """Profile every decoding format of the model section kernel by kernel (run before ``model``, or on
        its own: then the model section runs here with bf16 and int4 layers + int4 head)."""
        self.want_breakdown = True
        from importlib import import_module

        td = import_module(self.int4.__package__ + ".triton_decode")
        g = torch.Generator(device=self.dev).manual_seed(7)
        for splits in (13, 103):  # the one-kernel merge of the attention slices against the torch ops
            o = torch.randn(1, 28, splits, 128, device=self.dev, generator=g)
            m = torch.randn(1, 28, splits, device=self.dev, generator=g) * 3
            m[..., splits // 2:] = float("-inf")
            o[..., splits // 2:, :] = 0
            lse = torch.rand(1, 28, splits, device=self.dev, generator=g) + 0.5
            got = td.merge_splits(o, m, lse, torch.float32)
            want = td.merge_splits_torch(o, m, lse, torch.float32)
            err = ((got - want).abs().max() / want.abs().max()).item()
            self.result["checks"].append({"matrix": f"attention merge, {splits} slices (one kernel against torch)",
                                          "rows": 1, "max_err_rel": err, "ok": err < 1e-5, "config": "-"})
            self.log(f"attention merge of {splits} slices: max error {err:.2e} of the largest output")
        if "model" not in self.args.sections.split(","):
            self.model()

    def profile_decode(self, gen, ctx: int, fmt: str, step_ms: float, reps: int = 5) -> None:
        """torch.profiler over ``reps`` replays of the captured step at context ``ctx`` (op by op when the
        profiler sees no kernel of the graph) -> a ``breakdown`` row."""
        from torch.profiler import ProfilerActivity, profile

        def run_graph():
            gen._graph.replay()

        def run_eager():
            gen._step()

        sources = [("graph replay", run_graph)] if gen._graph is not None else []
        sources.append(("op by op (kernels of one eager step)", run_eager))
        for source, run in sources:
            gen._pos.fill_(ctx)
            run()
            self.sync()
            gen._pos.fill_(ctx)
            acts = [ProfilerActivity.CUDA] if self.dev.type == "cuda" else [ProfilerActivity.CPU]
            with profile(activities=acts) as prof:
                for _ in range(reps):
                    run()
                self.sync()
            path = self.out / "profile_trace.tmp.json"
            prof.export_chrome_trace(str(path))
            trace = json.loads(path.read_text())
            path.unlink()
            cats = ("kernel", "gpu_memset", "gpu_memcpy") if self.dev.type == "cuda" else ("cpu_op",)
            events = [(e["name"], float(e.get("dur", 0.0))) for e in trace.get("traceEvents", [])
                      if e.get("ph") == "X" and e.get("cat") in cats]
            if self.dev.type != "cuda":  # the CPU smoke test: top-level aten ops only
                events = [(n, d) for n, d in events if n.startswith("aten::")][:2000]
            if events:
                row = {"format": fmt, "context": ctx, "source": source,
                       **summarize_kernels(events, reps, step_ms if source == "graph replay" else None)}
                self.result["breakdown"].append(row)
                top = ", ".join(f"{r['stage']} {r['us_per_step']:.0f} us ({r['kernels_per_step']:.0f})"
                                for r in row["stages"][:6])
                self.log(f"breakdown {fmt} @ {ctx} ({source}): {row['kernels_per_step']:.0f} kernels, busy "
                         f"{row['busy_us_per_step']:.0f} us of {step_ms * 1e3:.0f}; {top}")
                self.save()
                return
        self.result["notes"].append(f"breakdown {fmt} @ {ctx}: the profiler recorded no kernels")

    def model(self) -> None:
        """The whole fastgen model (7.6B shape, random weights): graph decoding at 4k and 32k, bf16, then int4
        (the decoder layers' matrices), then the int4 variants of --model-variants in the same process: w2
        making SwiGLU itself, the output head in int4 too, both. Before the head is quantised, the next-token
        distributions of a few random prompts with the int4 head are compared with those before it and with
        bf16 (head_accuracy)."""
        from importlib import import_module

        pkg = self.int4.__package__
        StaticKVCache = import_module(pkg + ".kv_cache").StaticKVCache
        ModelConfig = import_module(pkg + ".config").ModelConfig
        Generator = import_module(pkg + ".generate").Generator
        build_model = import_module(pkg + ".model").build_model

        if self.args.tiny:
            cfg = ModelConfig(n_layers=2, dim=128, intermediate=256, n_heads=4, n_kv_heads=2, head_dim=32, vocab=256)
            contexts, prompt_len = (64, 128), 32
        else:
            cfg = ModelConfig.qwen25_7b_1m()
            contexts, prompt_len = (4096, 32768), 256
        model = build_model(cfg, self.dev, torch.bfloat16, fused=True)
        bf16_cache = StaticKVCache(cfg, contexts[-1] + 64, device=self.dev, dtype=torch.bfloat16)
        first = torch.zeros(1, 1, dtype=torch.long, device=self.dev)
        g = torch.Generator(device=self.dev).manual_seed(6)
        prompts = [torch.randint(cfg.vocab, (1, prompt_len), device=self.dev, generator=g)
                   for _ in range(self.args.head_prompts)]

        def log_probs():
            """log-softmax of every position's logits [prompts x n, V] (a fresh small cache, eager attention)."""
            small = StaticKVCache(cfg, prompt_len + 16, device=self.dev, dtype=torch.bfloat16)
            out = [torch.log_softmax(model.prefill(p, 0, small, "eager", all_logits=True)[0], -1) for p in prompts]
            return torch.cat(out)

        def compare(ref, got) -> dict:
            kl = (ref.exp() * (ref - got)).sum(-1)
            return {"mean_kl": kl.mean().item(), "max_kl": kl.max().item(),
                    "top1_same": (ref.argmax(-1) == got.argmax(-1)).float().mean().item()}

        td = import_module(pkg + ".triton_decode")
        pdl = import_module(pkg + ".pdl")
        tf = import_module(pkg + ".triton_fused")

        def decode(fmt: str) -> None:
            td.MERGE = "torch" if "+torch_merge" in fmt else "triton"
            td.SPREAD = "+capacity_splits" not in fmt
            pdl.ENABLED = "+no_pdl" not in fmt
            norm = re.search(r"\+norm(\d+)", fmt)
            tf.NORM_WARPS = int(norm.group(1)) if norm else 4
            programs = re.search(r"\+programs(\d+)", fmt)
            td.TARGET_PROGRAMS = int(programs.group(1)) if programs else None
            shipped_dot = td.FP8_DOT
            td.FP8_DOT = "q" if "+fp8q" in fmt else shipped_dot  # +fp8q: the 8-bit cache's products in bf16
            try:
                decode_with(fmt)
            finally:
                td.MERGE, td.SPREAD, pdl.ENABLED, tf.NORM_WARPS, td.TARGET_PROGRAMS = "triton", True, True, 4, None
                td.FP8_DOT = shipped_dot

        caches = {}

        def decode_with(fmt: str) -> None:
            # +fp8kv: keys and values in an 8-bit cache with per-position scales (kv_cache.py), read by the same
            # attention kernels; made on first use, kept for the later variants
            if "+fp8kv" in fmt and "fp8" not in caches:
                caches["fp8"] = StaticKVCache(cfg, contexts[-1] + 64, device=self.dev, dtype=torch.bfloat16,
                                              kv_dtype=torch.float8_e4m3fn)
            cache = caches["fp8"] if "+fp8kv" in fmt else bf16_cache
            weights = sum(self.int4.weights_bytes(layer) for layer in model.layers)
            head = self.int4.weights_bytes(model.output)
            gen = Generator(model, cache, "eager", "triton", cuda_graph=self.dev.type == "cuda")
            for ctx in contexts:
                cache.length = ctx  # decoding time depends on the length, not on what the cache holds
                gen.decode(first, 2)  # capture on the first context
                steps = 4 if self.args.tiny else 32
                runs = []
                for _ in range(2):
                    cache.length = ctx
                    self.sync()
                    t = time.perf_counter()
                    tokens = gen.decode(first, steps)
                    self.sync()
                    runs.append((time.perf_counter() - t) / steps * 1e3)
                tokens = tokens[0].tolist()
                tokens_of[(fmt, ctx)] = tokens
                # PDL changes when kernels launch, not what they do; the GLU epilogue sums and rounds as the
                # split sum and silu_mul kernels do: the same greedy tokens either way
                for option, what in (("+no_pdl", "with and without PDL"),
                                     ("+glu", "with and without SwiGLU in w13's split sum"),
                                     ("+rope", "with and without rotary and the cache write in wqkv's split sum")):
                    base = fmt.replace(option, "")
                    if base != fmt and (base, ctx) in tokens_of:
                        same = tokens_of[(base, ctx)] == tokens
                        self.result["checks"].append({"matrix": f"model decode {base} @ {ctx}: {steps} greedy tokens "
                                                                f"{what}", "rows": 1, "ok": same,
                                                      "max_err_rel": 0.0 if same else 1.0, "config": "graph"})
                        self.log(f"model decode {base} @ {ctx}: tokens {what} {'equal' if same else 'DIFFER'}")
                self.result["model"].append({"format": fmt, "context": ctx, "ms_per_token": min(runs),
                                             "runs_ms_per_token": runs, "layer_weights_bytes": weights,
                                             "head_bytes": head})
                self.log(f"model {fmt} @ {ctx}: {min(runs):.2f} ms/token (runs {runs[0]:.2f}, {runs[1]:.2f}; "
                         f"layer weights {weights / 1e9:.2f} GB, head {head / 1e9:.2f} GB)")
                self.save()
                if self.want_breakdown:
                    try:
                        self.profile_decode(gen, ctx, fmt, min(runs))
                    except Exception as exc:  # noqa: BLE001 - the timings above stand without it
                        self.result["notes"].append(f"breakdown {fmt} @ {ctx} failed: {type(exc).__name__}: {exc}")
            gen.release()

        tokens_of: dict[tuple[str, int], list[int]] = {}
        ref = log_probs() if self.args.head_prompts else None
        for fmt in self.args.bf16_variants.split(","):
            decode(fmt)
        t = time.perf_counter()
        count = self.int4.quantize_linears_int4(model, 128)
        self.sync()
        self.result["notes"].append(f"quantised {count} matrices in {time.perf_counter() - t:.1f} s")
        torch.cuda.empty_cache()
        layers_only = None
        # the variants without the int4 head first: the head is quantised once, in place
        for fmt in sorted(self.args.model_variants.split(","), key=lambda v: "+head" in v):
            if self.left() < 15:
                self.result["notes"].append(f"model decode {fmt} skipped: time budget")
                break
            if "+head" in fmt and type(model.output) is torch.nn.Linear:
                if ref is not None:
                    layers_only = log_probs()
                self.int4.quantize_linears_int4(model, 128, head=True)
                torch.cuda.empty_cache()
                if ref is not None:
                    with_head = log_probs()
                    row = {"prompts": len(prompts), "tokens": prompt_len, "positions": ref.shape[0]}
                    for what, a, b in (("bf16 -> int4 layers", ref, layers_only),
                                       ("bf16 -> int4 layers + int4 head", ref, with_head),
                                       ("int4 layers -> int4 layers + int4 head", layers_only, with_head)):
                        self.result["head_accuracy"].append({"compared": what, **row, **compare(a, b)})
                        self.log(f"head accuracy {what}: {self.result['head_accuracy'][-1]}")
                    del layers_only, with_head
                    self.save()
            glu = "+glu" in fmt  # w13 with interleaved columns makes SwiGLU in its split sum (Int4Linear.gated)
            for layer in model.layers:
                w13 = layer.feed_forward.w13
                w13.regroup_gate_up(self.int4.glu_chunk(w13.out_features, w13.in_features, self.dev) if glu else 0)
                # +rope: wqkv with each head's halves interleaved rotates and writes the cache in its split sum
                wqkv = layer.attention.wqkv
                chunk = min(self.int4.glu_chunk(wqkv.out_features, wqkv.in_features, self.dev), cfg.head_dim // 2)
                wqkv.regroup_heads(chunk if "+rope" in fmt else 0, cfg.head_dim)
            fuse = "+swiglu" in fmt
            for layer in model.layers:
                layer.feed_forward.w2.fuse_swiglu = fuse
            if fuse:  # one op-by-op decoding step after a short prompt, fused against unfused: the same logits
                # with the same w2 tile (another tile sums in another order, and 28 random layers amplify that)
                w2 = model.layers[0].feed_forward.w2
                key = (1, w2.out_features, w2.qweight.shape[0] * 8)
                swept = self.ti.TUNED_SWIGLU.pop(key, None)
                check = StaticKVCache(cfg, 64, device=self.dev, dtype=torch.bfloat16)
                tokens = torch.randint(cfg.vocab, (1, 17), device=self.dev, generator=g)
                model.prefill(tokens[:, :16], 0, check, "eager")
                pos = torch.full((1,), 16, dtype=torch.long, device=self.dev)
                got = model.decode(tokens[:, 16:], pos, check, "triton").float()
                for layer in model.layers:
                    layer.feed_forward.w2.fuse_swiglu = False
                want = model.decode(tokens[:, 16:], pos, check, "triton").float()
                for layer in model.layers:
                    layer.feed_forward.w2.fuse_swiglu = True
                if swept is not None:
                    self.ti.TUNED_SWIGLU[key] = swept
                err = ((got - want).abs().max() / want.abs().max()).item()
                self.result["checks"].append({"matrix": f"model decode step ({fmt} against unfused)", "rows": 1,
                                              "max_err_rel": err, "ok": err < 1e-2, "config": "tuned"})
                self.log(f"model decode step {fmt} against unfused: max error {err:.2e} of the largest logit")
            decode(fmt)
        del model, bf16_cache, caches

    def table(self) -> str:
        lines = [f"{self.result['device']}, copy bandwidth {self.bw / 1e9:,.0f} GB/s; per product, weights "
                 "streamed from memory, CUDA graph replay", "",
                 "| matrix | N x K | rows | bf16 ms | int4 ms | NF4 ms | int4 bound ms | int4 x bound | bf16 / int4 |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in self.result["matrices"]:
            nf = f"{r['nf4_ms']:.4f}" if "nf4_ms" in r else "-"
            lines.append(f"| {r['matrix']} | {r['n']} x {r['k']} | {r['rows']} | {r['bf16_ms']:.4f} | "
                         f"{r['int4_ms']:.4f} | {nf} | {r['int4_bound_ms']:.4f} | {r['int4_x_bound']:.2f} | "
                         f"{r['speedup_vs_bf16']:.2f} |")
        lines += ["", "| layer stack (28 layers) | rows | bf16 ms | int4 ms | NF4 ms | int4 bound ms | int4 x bound |"
                  " bf16 / int4 |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in self.result["stack"]:
            what = r.get("estimate") or r.get("measured")
            nf = f"{r['nf4_ms']:.3f}" if "nf4_ms" in r else "-"
            lines.append(f"| {what} | {r['rows']} | {r['bf16_ms']:.3f} | {r['int4_ms']:.3f} | {nf} | "
                         f"{r['int4_bound_ms']:.3f} | {r['int4_ms'] / r['int4_bound_ms']:.2f} | "
                         f"{r['bf16_ms'] / r['int4_ms']:.2f} |")
        if self.result["prefill"]:
            lines += ["", "| prefill product | rows | bf16 ms | int4 ms (dequantise + cuBLAS) | of which dequantise |"
                      " int4 / bf16 |", "|---|---:|---:|---:|---:|---:|"]
            for r in self.result["prefill"]:
                lines.append(f"| {r['matrix']} | {r['rows']} | {r['bf16_ms']:.3f} | {r['int4_ms']:.3f} | "
                             f"{r['dequantize_ms']:.3f} | {r['int4_over_bf16']:.2f} |")
        if self.result["model"]:
            lines += ["", "| whole model decode | context | ms/token | bf16 / this | layer weights GB | head GB |",
                      "|---|---:|---:|---:|---:|---:|"]
            bf16 = {r["context"]: r["ms_per_token"] for r in self.result["model"] if r["format"] == "bf16"}
            for r in self.result["model"]:
                ratio = f"{bf16[r['context']] / r['ms_per_token']:.2f}" if r["context"] in bf16 else "-"
                head = f"{r['head_bytes'] / 1e9:.2f}" if "head_bytes" in r else "-"
                lines.append(f"| {r['format']} | {r['context']} | {r['ms_per_token']:.2f} | {ratio} | "
                             f"{r['layer_weights_bytes'] / 1e9:.2f} | {head} |")
        if self.result.get("breakdown"):
            lines += ["", "| decode step breakdown | context | source | stage | kernels | us/token | share |",
                      "|---|---:|---|---|---:|---:|---:|"]
            for r in self.result["breakdown"]:
                for st in r["stages"]:
                    lines.append(f"| {r['format']} | {r['context']} | {r['source']} | {st['stage']} | "
                                 f"{st['kernels_per_step']:.0f} | {st['us_per_step']:.1f} | {st['share']:.1%} |")
                if "between_kernels_us_per_step" in r:
                    lines.append(f"| {r['format']} | {r['context']} | {r['source']} | between kernels | - | "
                                 f"{r['between_kernels_us_per_step']:.1f} | {r['between_kernels_share']:.1%} |")
        if self.result.get("head_accuracy"):
            lines += ["", "| next-token distributions (random prompts) | positions | mean KL nats | max KL | "
                      "same top token |", "|---|---:|---:|---:|---:|"]
            for r in self.result["head_accuracy"]:
                lines.append(f"| {r['compared']} | {r['positions']} | {r['mean_kl']:.4f} | {r['max_kl']:.4f} | "
                             f"{r['top1_same']:.3f} |")
        return "\n".join(lines)


PACKED_TILES = ((64, 1, 4, 3), (64, 2, 4, 3), (128, 2, 4, 3), (128, 4, 4, 3), (128, 4, 4, 2), (128, 8, 4, 3),
                (64, 4, 2, 3), (64, 8, 2, 3), (128, 4, 8, 3), (64, 14, 2, 3), (256, 2, 8, 3))


def packed_tiles(args) -> tuple[tuple[int, int, int, int], ...]:
    """The one-row packed tiles the sweep times: ``--packed-tiles`` (columns x blocks a split x warps x
    stages, comma-separated) or :data:`PACKED_TILES`."""
    if not args.packed_tiles:
        return PACKED_TILES
    return tuple(tuple(int(x) for x in t.split("x")) for t in args.packed_tiles.split(","))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="int4-bench-out")
    p.add_argument("--sweep", action="store_true", help="time several kernel tiles per case and keep the fastest")
    p.add_argument("--budget-s", type=float, default=150.0, help="stop starting new sections after this")
    p.add_argument("--reserve-s", type=float, default=25.0, help="time kept for the later sections")
    p.add_argument("--sweep-s", type=float, default=60.0, help="stop the tile sweep after this")
    p.add_argument("--stream-mb", type=float, default=400.0, help="weight copies per timing: at least this many MB")
    p.add_argument("--sweep-rows", default="1,4,8", help="row counts the sweep times")
    p.add_argument("--sweep-matrices", default="", help="only these matrices in the sweep (names, e.g. head,w2)")
    p.add_argument("--packed-tiles", default="", help="one-row packed tiles the sweep times, as COLUMNSxBLOCKSxWARPSxSTAGES "
                                                      "comma-separated (default: the built-in list)")
    p.add_argument("--model-variants", default=MODEL_VARIANTS,
                   help="int4 variants the model section decodes after bf16 (+swiglu: w2 makes SwiGLU itself; "
                        "+glu: w13 makes it in its split sum; +rope: wqkv rotates and writes the cache in its; "
                        "+head: the output head in int4 too; +fp8kv: an 8-bit KV cache)")
    p.add_argument("--bf16-variants", default="bf16",
                   help="bf16 decodings before the int4 ones (bf16+torch_merge: the attention merge in torch ops)")
    p.add_argument("--head-prompts", type=int, default=4, help="random prompts of 256 tokens for the int4 head's KL")
    p.add_argument("--packed", default="4,5", help="two-codes-an-instruction variants the one-row sweep times "
                   "(and, for 6, the checks)")
    p.add_argument("--tiny", action="store_true", help="small shapes on the CPU: a smoke test of this script")
    p.add_argument("--sections", default="checks,matrices,stack,model,sweep,prefill",
                   help="in this order; also floor (loads only), head (the output head at one row) and breakdown "
                        "(each model decoding profiled kernel by kernel; before model)")
    args = p.parse_args(argv)
    if not args.tiny and not torch.cuda.is_available():
        print("int4_bench needs a CUDA GPU", file=sys.stderr)
        return 2
    bench = Bench(args)
    bench.bandwidth()
    torch.backends.cuda.matmul.allow_tf32 = False
    for section in args.sections.split(","):
        if section == "sweep" and not args.sweep:
            continue
        try:
            with torch.no_grad():
                getattr(bench, section)()
        except Exception as exc:  # noqa: BLE001 - keep what the other sections measure
            import traceback
            traceback.print_exc()
            bench.result["notes"].append(f"{section} failed: {type(exc).__name__}: {str(exc)[:300]}")
            bench.save()
    text = bench.table()
    print(text)
    (bench.out / "int4_bench.md").write_text(text + "\n")
    bench.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())

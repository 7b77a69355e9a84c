"""The long-context GPU benchmark: one run measures the GPU's own limits, then prefill and decoding
against them, for each attention implementation and context length.

Limits: the bf16 matrix-product peak (large square GEMMs) and the copy bandwidth (device-to-device
copy, bytes read + written). Prefill: time, tokens/s, achieved TFLOP/s (costs.prefill_flops) and its
ratio to the peak, peak memory, and the time to the first token after a warm resident prefix.
Decoding: ms/token replayed from a CUDA graph, against the bound costs.decode_bytes / bandwidth.
Results are saved after every measurement (JSON, Markdown, PNG plots) so a timeout keeps them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import torch

from . import costs
from storytransformer.engine.fastgen.attention import (DECODE_IMPLS, PREFILL_IMPLS, prefill_attention, probe_prefill,
                                                       probes_for)
from storytransformer.engine.fastgen.kv_cache import StaticKVCache
from storytransformer.engine.fastgen.config import ModelConfig
from storytransformer.engine.fastgen.generate import Generator
from storytransformer.engine.fastgen.model import build_model
from .options import DEFAULT_CONTEXTS, DEFAULT_LONG_CONTEXTS, TINY_CONTEXTS, parse_sizes
from .report import output_paths, write_outputs

GB = 1e9
DEFAULT_PREFILL_ORDER = ("cudnn_split", "triton", "sdpa_cudnn", "sdpa_flash", "sdpa_efficient", "flash_attn", "eager")
VARIANTS_MAX_CONTEXT = 32768  # the stage/mode comparison runs at the longest context up to this


def repository_root() -> Path:
    return Path(__file__).resolve().parents[2]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, iters: int = 1) -> float:
    """Mean seconds of ``fn()`` over ``iters`` calls, the device drained before and after."""
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - start) / iters


def free_memory(device: torch.device) -> int | None:
    return torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None


def cleanup(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure_limits(device: torch.device, dtype: torch.dtype, log, sustained: bool = True) -> dict:
    """Matrix-product peak (TFLOP/s, best of a few square sizes) and copy bandwidth (GB/s)."""
    sizes = (4096, 8192, 16384) if device.type == "cuda" else (128, 256)
    best, best_n = 0.0, 0
    for n in sizes:
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        timed(lambda: a @ b, device, 3)
        seconds = timed(lambda: a @ b, device, 10)
        tflops = 2 * n**3 / seconds / 1e12
        if tflops > best:
            best, best_n = tflops, n
        del a, b
    numel = (1 << 30) if device.type == "cuda" else (1 << 23)  # 2 GiB (16 MiB on CPU) of bf16
    src = torch.empty(numel, device=device, dtype=torch.bfloat16).fill_(1)
    dst = torch.empty_like(src)
    timed(lambda: dst.copy_(src), device, 3)
    seconds = timed(lambda: dst.copy_(src), device, 20)
    bandwidth = 2 * src.nbytes / seconds / GB
    del src, dst
    cleanup(device)
    limits = {"matmul_tflops": best, "matmul_n": best_n, "copy_gbps": bandwidth}
    if device.type == "cuda" and sustained:
        limits.update(sustained_matmul(device, dtype, best_n))
    log(f"limits: matmul peak {best:.1f} TFLOP/s (n={best_n}), copy bandwidth {bandwidth:.0f} GB/s"
        + (f"; sustained for {limits['sustained_s']:.0f} s: {limits['sustained_tflops']:.1f} TFLOP/s"
           if "sustained_tflops" in limits else ""))
    return limits


def sustained_matmul(device: torch.device, dtype: torch.dtype, n: int, seconds: float = 10.0) -> dict:
    """The same product repeated for about ``seconds``: a long prefill runs that long at full power, and
    the clock the GPU holds under sustained load can be lower than in a burst of ten products. Reported
    beside the burst peak, which stays the yardstick."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    one = timed(lambda: a @ b, device, 3)
    iters = max(10, int(seconds / one))
    elapsed = timed(lambda: a @ b, device, iters) * iters
    out = {"sustained_tflops": 2 * n**3 * iters / elapsed / 1e12, "sustained_s": elapsed}
    try:
        out["sm_clock_mhz_after"] = torch.cuda.clock_rate(device)  # through NVML, when it is there
    except Exception:  # noqa: BLE001 - informative only
        pass
    del a, b
    cleanup(device)
    return out


def environment(device: torch.device) -> dict:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    env = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "python": platform.python_version(),
           "torch": torch.__version__, "cuda": torch.version.cuda, "transformers": version("transformers"),
           "triton": version("triton"), "flash_attn": version("flash-attn"),
           "bitsandbytes": version("bitsandbytes"), "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_bytes=props.total_memory, capability=f"{props.major}.{props.minor}",
                   sm_count=props.multi_processor_count, cudnn=torch.backends.cudnn.version())
    else:
        env.update(gpu=None, cpu=platform.processor() or platform.machine())
    return env


class Bench:
    """One benchmark run: configuration, model, limits, and the rows measured so far."""

    def __init__(self, args: argparse.Namespace, log=print):
        self.args, self.log = args, log
        self.device = torch.device(args.device)
        self.probes = probes_for(self.device)  # what probe_prefill finds on this device
        self.cfg = ModelConfig.tiny() if args.tiny else ModelConfig.qwen25_7b_1m()
        self.dtype = torch.float32 if args.tiny and self.device.type == "cpu" else torch.bfloat16
        self.dtype_bytes = torch.empty((), dtype=self.dtype).element_size()
        self.chunk = args.chunk or (32 if args.tiny else 8192)
        self.suffix = args.suffix_tokens or (16 if args.tiny else 256)
        self.contexts = sorted(args.contexts or parse_sizes(TINY_CONTEXTS if args.tiny else DEFAULT_CONTEXTS))
        long_default = "" if args.tiny else DEFAULT_LONG_CONTEXTS
        self.long_contexts = sorted(args.long_contexts if args.long_contexts is not None else parse_sizes(long_default))
        self.attn = args.attn or list(DEFAULT_PREFILL_ORDER)
        self.decode_attn = args.decode_attn or list(DECODE_IMPLS)
        interpreted = os.environ.get("TRITON_INTERPRET") == "1"
        self.fused = not args.no_fused and (self.device.type == "cuda" or interpreted)
        self.layered = args.prefill_mode == "layered"
        self.quant = args.quant if args.quant is not None else (
            ["int8", "nf4", "int4"] if self.device.type == "cuda" and not args.tiny else [])
        self.decode_tokens = args.decode_tokens
        # the kernels of the format comparisons: the 8-bit cache is read by the Triton kernels only
        self.prefill_attn = "triton" if self.fused else "eager"
        self.decode_attn_fmt = "triton" if self.fused else "matmul"
        if args.smoke:
            self.contexts = [64 if args.tiny else 4096]
            self.long_contexts = []
            self.attn = args.attn or ["triton" if self.fused else "sdpa_flash"]
            self.quant = args.quant or []
        prefix = "gpu_tiny" if args.tiny else "gpu_smoke" if args.smoke else "gpu"
        out = Path(args.out) if args.out else repository_root() / "docs" / "benchmarks"
        self.paths = output_paths(out, prefix)
        self.started = time.perf_counter()
        self.deadline = self.started + args.budget_s
        self.result: dict = {"environment": environment(self.device), "model": asdict(self.cfg),
                             "options": {"contexts": self.contexts, "long_contexts": self.long_contexts,
                                         "attn": list(self.attn), "decode_attn": list(self.decode_attn), "chunk": self.chunk,
                                         "decode_tokens": args.decode_tokens, "suffix_tokens": self.suffix,
                                         "dtype": str(self.dtype).removeprefix("torch."), "budget_s": args.budget_s,
                                         "fused": self.fused, "prefill_mode": args.prefill_mode, "quant": self.quant},
                             "limits": None, "unavailable": {}, "prefill": [], "decode": [], "variants": [],
                             "quantized": [], "kv_cache": [], "capped": [], "accuracy": [], "notes": []}
        self.rates: dict[str, float] = {}  # best achieved FLOP/s per prefill attention, to predict durations
        self.warmed: set[str] = set()
        self.last_plot = self.started

    # ---- output -------------------------------------------------------------------------------------
    def save(self, final: bool = False) -> None:
        """JSON and Markdown after every measurement; plots at most every 60 s and at the end."""
        now = time.perf_counter()
        self.result["elapsed_s"] = round(now - self.started, 1)
        plots = final or now - self.last_plot > 60
        write_outputs(self.result, self.paths, plots=plots)
        if plots:
            self.last_plot = now

    # ---- setup --------------------------------------------------------------------------------------
    def setup(self) -> None:
        self.result["limits"] = measure_limits(self.device, self.dtype, self.log, sustained=not self.args.no_sweep)
        self.save()
        t0 = time.perf_counter()
        self.model = build_model(self.cfg, self.device, self.dtype, fused=self.fused)
        sync(self.device)
        self.weights_bytes = costs.weight_bytes(self.cfg, self.dtype_bytes)
        self.result["model"].update(params=costs.param_count(self.cfg), weight_bytes=self.weights_bytes,
                                    kv_bytes_per_token=costs.kv_bytes_per_token(self.cfg, self.dtype_bytes),
                                    build_s=round(time.perf_counter() - t0, 2))
        self.log(f"model: {costs.param_count(self.cfg) / 1e9:.2f}B parameters built on {self.device} "
                 f"in {time.perf_counter() - t0:.1f} s")
        cfg = self.cfg
        probes = self.result["probes"] = {}
        for impl in dict.fromkeys(self.attn + list(PREFILL_IMPLS if self.args.smoke else ())):
            try:
                why = probe_prefill(impl, self.device, self.dtype, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim)
            except Exception as exc:  # noqa: BLE001 - an unusable kernel is a result, not a crash
                why = f"{type(exc).__name__}: {str(exc)[:200]}"
            probes[impl] = why or (("ok, chunked prefill" if self.probes.offset_mode.get(impl) == "lower_right"
                                    else "ok, one chunk only (no attention to cached positions)")
                                   + (", native GQA" if impl in self.probes.gqa_native else ""))
            self.log(f"probe {impl}: {probes[impl]}")
            if impl not in self.attn:
                continue
            if why:
                self.result["unavailable"][impl] = why
                self.attn.remove(impl)
            elif self.probes.offset_mode.get(impl) == "single_chunk":
                self.result["notes"].append(f"{impl} cannot attend to cached positions after the first chunk "
                                            "on this device: it prefills in one chunk and has no warm-prefix timing")
        for impl in list(self.decode_attn):
            why = self._probe_decode(impl)
            if why:
                self.result["unavailable"][f"decode:{impl}"] = why
                self.decode_attn.remove(impl)
        for name, why in self.result["unavailable"].items():
            self.log(f"unavailable: {name}: {why}")
        self.save()

    def _probe_decode(self, impl: str) -> str | None:
        """Compare a decode kernel with the matmul one on a small cache of the real head shape."""
        if impl not in DECODE_IMPLS:
            return f"unknown decode attention {impl!r}"
        if impl == "matmul":
            return None
        if self.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
            return "Triton needs CUDA here (or TRITON_INTERPRET=1 for its CPU interpreter)"
        try:
            from storytransformer.engine.fastgen.attention import decode_attention

            cfg, S = self.cfg, 1024
            g = torch.Generator(device="cpu").manual_seed(0)
            q = torch.randn(1, cfg.n_heads, 1, cfg.head_dim, generator=g).to(self.device, self.dtype)
            k, v = (torch.randn(1, cfg.n_kv_heads, S, cfg.head_dim, generator=g).to(self.device, self.dtype)
                    for _ in range(2))

            class Positions:
                positions = torch.arange(S, device=self.device)

            length = torch.tensor([700], device=self.device)
            got = decode_attention(impl, q, k, v, length, Positions).float()
            want = decode_attention("matmul", q, k, v, length, Positions).float()
            err = (got - want).abs().max().item()
            return None if err <= (1e-4 if self.dtype == torch.float32 else 3e-2) else f"differs by {err:.3g}"
        except Exception as exc:  # noqa: BLE001 - an unusable kernel is a result, not a crash
            return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"

    # ---- measurements -------------------------------------------------------------------------------
    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def predicted_prefill_s(self, impl: str, context: int) -> float:
        peak = self.result["limits"]["matmul_tflops"] * 1e12
        rate = self.rates.get(impl, (0.05 if impl == "eager" else 0.25) * peak)
        return costs.prefill_flops(self.cfg, context) / rate

    def run(self) -> None:
        self.setup()
        if not self.args.no_sweep:
            self.sweep()
        self.measure_issue18()
        self.result["complete"] = True
        self.save(final=True)
        self.log(f"done in {time.perf_counter() - self.started:.0f} s: {self.paths['json']}")

    def sweep(self) -> None:
        """Prefill and decoding for each attention implementation and context."""
        for i, context in enumerate(self.contexts):
            self.measure_context(context, self.attn)
            if i == 0:
                self.transformers_baseline()  # early: it is cheap at the shortest context
        if self.long_contexts:
            best = self.fastest_attention()
            for context in self.long_contexts:
                if best:
                    self.measure_context(context, [best])
                else:
                    self.result["notes"].append(f"{context}: no attention implementation measured to choose from")

    def measure_issue18(self) -> None:
        """Weight formats, the 8-bit cache, the capped runs and accuracy (see formats.py), in the order
        that keeps the most when the run is cut short."""
        from . import formats

        class Kernels:  # what formats.py reads: this run's context with the format comparison's kernels
            pass

        ctx = Kernels()
        for name in ("device", "cfg", "dtype", "fused", "result", "log", "save", "decode_tokens", "chunk", "layered",
                     "prefill_attn"):
            setattr(ctx, name, getattr(self, name))
        ctx.decode_attn = self.decode_attn_fmt
        if self.quant:
            base = "bf16" if self.dtype == torch.bfloat16 else "fp32"
            self.model = None  # each format builds its own model
            cleanup(self.device)
            formats.measure_formats(ctx, [base] + self.quant, self.args.quant_contexts or self.contexts[:1])
        if self.args.kv_contexts:
            model = build_model(self.cfg, self.device, self.dtype, fused=self.fused)
            formats.measure_kv_cache(ctx, model, self.args.kv_contexts)
            del model
            cleanup(self.device)
        self.model = None
        cleanup(self.device)
        caps = list(self.args.capped or [])
        if caps and self.device.type == "cuda":
            max_context = (self.args.capped_context or [None])[0]
            formats.measure_capped(ctx, caps[0], formats.four_bit_format(), "fp8", max_context=max_context)
        if self.args.accuracy:
            prompts = load_prompts(self.args.prompts, self.args.accuracy, self.cfg.vocab)
            formats.measure_accuracy(ctx, f"{self.cfg.name} (random weights)",
                                     lambda: build_model(self.cfg, self.device, self.dtype, fused=self.fused), prompts)
        if caps and self.device.type == "cuda":
            for cap in caps[1:]:
                formats.measure_capped(ctx, cap, formats.four_bit_format(), "fp8")
        elif caps:
            self.result["notes"].append("capped runs need CUDA (torch.cuda.set_per_process_memory_fraction)")

    def transformers_baseline(self) -> None:
        """Plain transformers decoding of the same shape at the shortest context, if time is left."""
        if self.args.no_hf_baseline:
            return
        context = self.contexts[0]
        if self.remaining() < 60 and self.device.type == "cuda":
            self.result["notes"].append("transformers baseline skipped: less than 60 s left in the time budget")
            return
        try:
            from .hf_baseline import transformers_decode

            row = transformers_decode(self.cfg, self.device, self.dtype, context)
            ours = [r for r in self.result["decode"] if r["status"] == "ok" and r["context"] == context]
            if ours:
                best = min(ours, key=lambda r: r["ms_per_token"])
                row.update(fastgen_ms_per_token=best["ms_per_token"], fastgen_kernel=best["attn"],
                           speedup=row["ms_per_token"] / best["ms_per_token"] if best["ms_per_token"] else None,
                           ratio_to_bound=row["ms_per_token"] / best["bound_ms"])
            self.result["transformers_baseline"] = row
            self.log(f"transformers {row['transformers']} generate @ {context}: {row['ms_per_token']:.2f} ms/token")
        except Exception as exc:  # noqa: BLE001 - the baseline is optional
            self.result["notes"].append(f"transformers baseline failed: {type(exc).__name__}: {str(exc)[:200]}")
        finally:
            cleanup(self.device)
        self.save()

    def fastest_attention(self) -> str | None:
        ok = [r for r in self.result["prefill"] if r["status"] == "ok"  # token-major chunks need a cached prefix
              and (self.layered or self.probes.offset_mode.get(r["attn"]) != "single_chunk")]
        if not ok:
            return None
        longest = max(r["context"] for r in ok)
        return max((r for r in ok if r["context"] == longest), key=lambda r: r["tokens_per_s"])["attn"]

    def measure_context(self, context: int, impls: list[str]) -> None:
        cfg, device = self.cfg, self.device
        capacity = -(-(context + self.suffix + self.args.decode_tokens + 16) // 256) * 256
        cache_bytes = costs.kv_bytes_per_token(cfg, self.dtype_bytes) * capacity
        free = free_memory(device)
        need = cache_bytes + costs.prefill_activation_bytes(cfg, min(self.chunk, context), capacity, self.dtype_bytes)
        if free is not None and need > 0.92 * free:
            for impl in impls:
                self.skip("prefill", impl, context, f"cache and activations need {need / GB:.1f} GB, "
                                                    f"{free / GB:.1f} GB free")
            return
        cache = None
        try:
            cache = StaticKVCache(cfg, capacity, device=device, dtype=self.dtype)
            gen = torch.Generator(device="cpu").manual_seed(context)
            tokens = torch.randint(cfg.vocab, (1, context + self.suffix), generator=gen).to(device)
            first = None
            for impl in impls:
                token = self.measure_prefill(impl, context, cache, tokens)
                first = token if token is not None else first
            if first is not None:
                for impl in self.decode_attn:
                    self.measure_decode(impl, context, cache, first)
                if self.args.compile and context == self.contexts[0]:
                    self.measure_decode("matmul", context, cache, first, compile=True)
                if context == max([c for c in self.contexts if c <= VARIANTS_MAX_CONTEXT] or self.contexts[:1]):
                    self.measure_variants(context, cache, tokens)
        except torch.cuda.OutOfMemoryError as exc:
            self.result["notes"].append(f"{context}: out of memory allocating the cache: {str(exc)[:160]}")
        finally:
            del cache
            cleanup(device)

    def skip(self, table: str, impl: str, context: int, reason: str, status: str = "skipped") -> None:
        self.result[table].append({"attn": impl, "context": context, "status": status, "reason": reason})
        self.log(f"{table} {impl} @ {context}: {status}: {reason}")
        self.save()

    def measure_prefill(self, impl: str, context: int, cache: StaticKVCache, tokens: torch.Tensor):
        """Time the prefill of ``context`` tokens and the warm-prefix first token; returns the next token."""
        cfg, device = self.cfg, self.device
        single = self.probes.offset_mode.get(impl) == "single_chunk"
        chunk = context if single and not self.layered else min(self.chunk, context)
        free = free_memory(device)
        if free is not None:
            need = costs.prefill_activation_bytes(cfg, chunk, context, self.dtype_bytes)
            if self.layered:
                need += costs.layered_prefill_bytes(cfg, context, self.dtype_bytes)
            if impl == "eager":  # layer-major: the scores of every query at once
                need += costs.eager_attention_bytes(cfg, context if self.layered else chunk, context)
            if need > 0.85 * free:
                return self.skip("prefill", impl, context, f"estimated {need / GB:.0f} GB of activations, "
                                                           f"{free / GB:.0f} GB free")
        predicted = self.predicted_prefill_s(impl, context)
        if predicted > self.remaining():
            return self.skip("prefill", impl, context, f"predicted {predicted:.0f} s, {self.remaining():.0f} s "
                                                       "left in the time budget")
        generator = Generator(self.model, cache, impl, "matmul", chunk=chunk, cuda_graph=False, layered=self.layered)
        try:
            if impl not in self.warmed:  # first use: kernel selection, cuDNN plans, allocator growth
                warm = min(context, 2 * min(chunk, 2048))
                generator.chunk = warm if single and not self.layered else max(1, warm // 2)
                generator.prefill(tokens[:, :warm], start=0)
                generator.chunk = chunk
                self.warmed.add(impl)
            plans_s = self.warm_attention_shapes(impl, context, cache) if self.layered and impl != "eager" else None
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            runs, first = [], None
            for _ in range(2 if predicted < 5 else 1):  # a second run has cuDNN plans and caches warm
                holder = {}
                runs.append(timed(lambda: holder.update(t=generator.prefill(tokens[:, :context], start=0)), device))
                first = holder["t"]
            seconds = min(runs)
            flops = costs.prefill_flops(cfg, context)
            peak = self.result["limits"]["matmul_tflops"]
            row = {"attn": impl, "context": context, "status": "ok", "chunk": chunk, "fused": self.fused,
                   "mode": "layered" if self.layered else "chunked",
                   "prefill_s": seconds, "prefill_first_s": runs[0], "attention_warmup_s": plans_s,
                   "tokens_per_s": context / seconds,
                   "flops": flops, "tflops": flops / seconds / 1e12, "ratio_to_peak": flops / seconds / 1e12 / peak,
                   "cache_bytes": cache.nbytes,
                   "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None}
            self.rates[impl] = max(self.rates.get(impl, 0.0), flops / seconds)
            if not single:
                row.update(self.warm_prefix(generator, context, tokens, seconds))
            self.result["prefill"].append(row)
            self.log(f"prefill {impl} @ {context}: {seconds:.3f} s, {row['tokens_per_s']:.0f} tok/s, "
                     f"{row['tflops']:.1f} TFLOP/s ({row['ratio_to_peak']:.0%} of peak), "
                     f"peak memory {(row['peak_memory_bytes'] or 0) / GB:.1f} GB"
                     + (f", warm TTFT {row['ttft_warm_s'] * 1e3:.0f} ms" if "ttft_warm_s" in row else ""))
            self.save()
            generator.truncate(context)
            return first
        except torch.cuda.OutOfMemoryError as exc:
            self.skip("prefill", impl, context, str(exc).splitlines()[0][:200], status="oom")
        except Exception as exc:  # noqa: BLE001 - one failing kernel must not end the run
            self.skip("prefill", impl, context, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                      status="error")
        finally:
            cache.length = min(cache.length, context)
            cleanup(device)
        return None

    def warm_attention_shapes(self, impl: str, context: int, cache: StaticKVCache) -> float:
        """Run one layer's attention on exactly this context's shapes before the timed prefill, so that
        kernel plans exist (cuDNN builds one per new shape, about 30 ms each), as in a resident engine that
        has served this length before. Returns its seconds, plans included."""
        cfg = self.cfg
        q = torch.zeros(cache.k.shape[1], context, cfg.n_heads, cfg.head_dim, device=self.device,
                        dtype=self.dtype).transpose(1, 2)
        keys, values = cache.k[0][:, :, :context], cache.v[0][:, :, :context]
        return timed(lambda: prefill_attention(impl, q, keys, values, 0), self.device)

    def warm_prefix(self, generator: Generator, context: int, tokens: torch.Tensor, cold_s: float) -> dict:
        """Time to the first token when ``context`` tokens are already cached and a request adds the suffix."""
        times = []
        for _ in range(3):
            generator.truncate(context)
            times.append(timed(lambda: generator.prefill(tokens[:, context:context + self.suffix]).cpu(), self.device))
        generator.truncate(context)
        warm = min(times[1:])
        return {"ttft_warm_s": warm, "ttft_cold_s": cold_s + warm, "suffix_tokens": self.suffix}

    def measure_decode(self, impl: str, context: int, cache: StaticKVCache, first: torch.Tensor,
                       compile: bool = False) -> None:
        """ms/token of greedy decoding after ``context`` cached tokens: replayed from a CUDA graph, and
        issued op by op from Python (which also warms the kernels up before the capture)."""
        device, steps = self.device, self.args.decode_tokens
        name = impl + ("+compile" if compile else "")
        if self.remaining() < 10:
            return self.skip("decode", name, context, f"{self.remaining():.0f} s left in the time budget")
        graph_ms = capture_s = graph_error = None
        try:
            cache.length = context
            eager = Generator(self.model, cache, decode_attn=impl, cuda_graph=False, compile=compile)
            eager.decode(first, 1)
            eager.truncate(context)
            eager_steps = steps if device.type != "cuda" else max(2, steps // 4)
            eager_ms = timed(lambda: eager.decode(first, eager_steps), device) / eager_steps * 1e3
            eager.truncate(context)
            if device.type == "cuda":
                graph_ms, capture_s, graph_error = self.graph_decode(impl, context, cache, first, compile)
            bandwidth = self.result["limits"]["copy_gbps"] * GB
            moved = costs.decode_bytes(self.cfg, context + steps // 2, self.dtype_bytes)
            bound_ms = moved / bandwidth * 1e3
            ms = graph_ms if graph_ms is not None else eager_ms
            row = {"attn": name, "context": context, "status": "ok", "ms_per_token": ms, "bound_ms": bound_ms,
                   "ratio_to_bound": ms / bound_ms, "bytes_per_token": moved, "cuda_graph": graph_ms is not None,
                   "eager_ms_per_token": eager_ms, "eager_ratio_to_bound": eager_ms / bound_ms,
                   "capture_s": capture_s, "graph_error": graph_error}
            self.result["decode"].append(row)
            self.log(f"decode {name} @ {context}: {ms:.2f} ms/token (bound {bound_ms:.2f} ms, "
                     f"{row['ratio_to_bound']:.2f}x){'' if graph_ms is not None else ' without a graph'}; "
                     f"op by op {eager_ms:.2f} ms" + (f"; graph failed: {graph_error}" if graph_error else ""))
            self.save()
        except torch.cuda.OutOfMemoryError as exc:
            self.skip("decode", name, context, str(exc).splitlines()[0][:200], status="oom")
        except Exception as exc:  # noqa: BLE001
            self.skip("decode", name, context, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                      status="error")
        finally:
            cache.length = context
            cleanup(device)

    def best_prefill(self, context: int) -> str | None:
        rows = [r for r in self.result["prefill"] if r["status"] == "ok" and r["context"] == context
                and self.probes.offset_mode.get(r["attn"]) != "single_chunk"]
        return max(rows, key=lambda r: r["tokens_per_s"])["attn"] if rows else None

    def measure_variants(self, context: int, cache: StaticKVCache, tokens: torch.Tensor) -> None:
        """Same run, context and attention: prefill token-major with plain torch stages, token-major with
        the fused kernels, and layer-major fused; then graph-replayed decoding with torch against fused
        stages. Shows what each change is worth on its own."""
        impl = self.best_prefill(context)
        if not self.fused or impl is None:
            return
        decode_impl = "triton" if "triton" in self.decode_attn else self.decode_attn[0]
        predicted = 3 * 3 * self.predicted_prefill_s(impl, context) + 20
        if predicted > self.remaining():
            self.result["notes"].append(f"stage comparison skipped: predicted {predicted:.0f} s, "
                                        f"{self.remaining():.0f} s left in the time budget")
            return
        device, peak = self.device, self.result["limits"]["matmul_tflops"]
        flops = costs.prefill_flops(self.cfg, context)
        first = None
        try:
            for fused, layered in ((False, False), (True, False), (True, True)):
                self.model.fused = fused
                generator = Generator(self.model, cache, impl, decode_impl, chunk=min(self.chunk, context),
                                      cuda_graph=False, layered=layered)
                generator.prefill(tokens[:, :min(context, 2 * self.chunk)], start=0)  # warm-up
                holder = {}
                seconds = min(timed(lambda: holder.update(t=generator.prefill(tokens[:, :context], start=0)), device)
                              for _ in range(2))
                first = holder["t"]
                row = {"kind": "prefill", "attn": impl, "context": context, "fused": fused,
                       "mode": "layered" if layered else "chunked", "seconds": seconds,
                       "tflops": flops / seconds / 1e12, "ratio_to_peak": flops / seconds / 1e12 / peak}
                self.result["variants"].append(row)
                self.log(f"variant prefill {impl} @ {context} fused={fused} {row['mode']}: {seconds:.3f} s, "
                         f"{row['ratio_to_peak']:.0%} of peak")
            bound_ms = costs.decode_bytes(self.cfg, context + self.args.decode_tokens // 2, self.dtype_bytes) / (
                self.result["limits"]["copy_gbps"] * GB) * 1e3
            for fused in (False, True):
                self.model.fused = fused
                cache.length = context
                ms, _, why = self.graph_decode(decode_impl, context, cache, first, False) if device.type == "cuda" \
                    else (None, None, "no CUDA graphs on the CPU")
                row = {"kind": "decode", "attn": decode_impl, "context": context, "fused": fused, "ms_per_token": ms,
                       "bound_ms": bound_ms, "ratio_to_bound": ms / bound_ms if ms else None, "error": why}
                self.result["variants"].append(row)
                self.log(f"variant decode {decode_impl} @ {context} fused={fused}: {ms} ms/token")
        except Exception as exc:  # noqa: BLE001 - a comparison is optional
            self.result["notes"].append(f"stage comparison failed: {type(exc).__name__}: {str(exc)[:200]}")
        finally:
            self.model.fused = self.fused
            cache.length = context
            cleanup(device)
        self.save()

    def graph_decode(self, impl: str, context: int, cache: StaticKVCache, first: torch.Tensor, compile: bool):
        """(ms/token, capture seconds, None) replaying a captured step, or (None, None, why) if capture fails."""
        generator = Generator(self.model, cache, decode_attn=impl, cuda_graph=True, compile=compile)
        try:
            start = time.perf_counter()
            generator.decode(first, 2)  # warm-up on a side stream, capture, two replays
            sync(self.device)
            capture_s = time.perf_counter() - start
            generator.truncate(context)
            steps = self.args.decode_tokens
            return timed(lambda: generator.decode(first, steps), self.device) / steps * 1e3, capture_s, None
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - report the op-by-op figure and why the graph failed
            return None, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        finally:
            generator.release()
            cache.length = context


def load_prompts(path: str | None, count: int, vocab: int, length: int = 256) -> list[list[int]]:
    """``count`` token-id lists from a JSON file (see prompts.py), or random ids when none is given."""
    if path:
        import json

        prompts = [p for p in json.loads(Path(path).read_text("utf-8")) if p][:count]
        if any(max(p) >= vocab for p in prompts):
            raise SystemExit(f"{path}: token ids beyond the model's vocabulary of {vocab}")
        return prompts
    gen = torch.Generator().manual_seed(11)
    return [torch.randint(vocab, (length,), generator=gen).tolist() for _ in range(count)]


def main(args: argparse.Namespace, log=None) -> int:
    """Run the benchmark; 2 when the device cannot run it."""
    log = log or (lambda line: print(line, flush=True))
    if args.replot:
        from .report import rewrite

        rewrite(Path(args.replot))
        return 0
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("storytransformer bench gpu: CUDA is not available on this machine; the benchmark needs an NVIDIA "
              "GPU (use --tiny --device cpu for a smoke test of the code)", file=sys.stderr)
        return 2
    if not device.startswith("cuda") and not args.tiny:
        print(f"storytransformer bench gpu: the full-size model runs on CUDA only; --device {device} needs --tiny",
              file=sys.stderr)
        return 2
    if device not in ("cpu",) and not device.startswith("cuda"):
        print(f"storytransformer bench gpu: unknown device {device!r} (cuda or cpu)", file=sys.stderr)
        return 2
    bench = Bench(args, log)
    with torch.inference_mode(False), torch.no_grad():
        bench.run()
    return 0

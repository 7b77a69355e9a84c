"""FP8 prefill products (issue 18, point 5, a first measurement): the 7.6B shape's four fused matrices
at prefill sizes, bf16 (cuBLAS through F.linear) against e4m3 weights and activations through
``torch._scaled_mm`` with a float32 scale per weight row and per activation row, the activations'
quantisation (amax, scale, cast) timed with it. The 28-layer stack is summed from the products.

Then (``--model-contexts``) the whole fastgen model of that shape (random weights): a layer-major
prefill (Triton attention, chunks of 8192, as gpu_bench.py times it) with bf16 matrices, then with
every decoder-layer matrix replaced by an FP8Linear built from the same weights (benchmark-only: the
engine does not offer FP8 weights), and the KL divergence of the last position's next-token
distribution against bf16. Attention, norms and the output head stay bf16.

    python3 benchmarks/gpu/fp8_prefill.py --out DIR [--rows 32768,131072] [--model-contexts 32768,131072]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

LAYERS = 28
FUSED = [("wqkv", 4608, 3584), ("wo", 3584, 3584), ("w13", 37888, 3584), ("w2", 3584, 18944)]
E4M3_MAX = 448.0


def quantize_rows(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``t`` [R, C] -> (e4m3 [R, C], float32 scale [R, 1]) with t ~= q * scale."""
    scale = t.abs().amax(dim=1, keepdim=True).float().clamp_min(1e-12) / E4M3_MAX
    return (t.float() / scale).to(torch.float8_e4m3fn), scale


try:
    import triton
    import triton.language as tl

    @triton.jit
    def _quantize_rows_kernel(X, Q, S, stride_x, K: tl.constexpr, BLOCK: tl.constexpr):
        """One row per program: its amax (first pass), then the e4m3 codes (second pass); float32 in
        registers only, so the row is read twice and written once as 1-byte codes."""
        row = tl.program_id(0)
        offs = tl.arange(0, BLOCK)
        amax = tl.zeros((BLOCK,), tl.float32)
        for k0 in range(0, K, BLOCK):
            v = tl.load(X + row * stride_x + k0 + offs, mask=k0 + offs < K, other=0.0).to(tl.float32)
            amax = tl.maximum(amax, tl.abs(v))
        scale = tl.maximum(tl.max(amax, 0), 1e-12) / 448.0
        tl.store(S + row, scale)
        for k0 in range(0, K, BLOCK):
            v = tl.load(X + row * stride_x + k0 + offs, mask=k0 + offs < K, other=0.0).to(tl.float32)
            tl.store(Q + row * K + k0 + offs, (v / scale).to(tl.float8e4nv), mask=k0 + offs < K)

    def quantize_rows_fused(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """quantize_rows in one Triton kernel (x [M, K], last dim contiguous)."""
        M, K = x.shape
        q = torch.empty(M, K, device=x.device, dtype=torch.float8_e4m3fn)
        s = torch.empty(M, 1, device=x.device, dtype=torch.float32)
        _quantize_rows_kernel[(M,)](x, q, s, x.stride(0), K=K, BLOCK=2048, num_warps=8)
        return q, s
except ImportError:  # pragma: no cover - the script needs a CUDA GPU, where triton is present
    quantize_rows_fused = None

FUSED_QUANT = {"on": False}  # set by main: the Triton row quantiser instead of torch ops


def fp8_linear(x: torch.Tensor, w8: torch.Tensor, w_scale: torch.Tensor) -> torch.Tensor:
    """x [M, K] bf16 -> x @ W.T [M, N] bf16 with W given as e4m3 rows [N, K] and their scales [N, 1]."""
    x8, x_scale = quantize_rows_fused(x) if FUSED_QUANT["on"] else quantize_rows(x)
    return torch._scaled_mm(x8, w8.t(), scale_a=x_scale, scale_b=w_scale.t(), out_dtype=torch.bfloat16)


class FP8Linear(torch.nn.Module):
    """A frozen nn.Linear as e4m3 rows with a float32 scale each; prefill-sized inputs only."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.w8, self.scale = quantize_rows(linear.weight.data)
        self.bias = linear.bias.data.clone() if linear.bias is not None else None
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = fp8_linear(x.reshape(-1, self.in_features), self.w8, self.scale)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*lead, self.out_features)


def to_fp8(model) -> int:
    count = 0
    for layer in model.layers:
        for parent in layer.modules():
            for name in [n for n, c in parent.named_children() if type(c) is torch.nn.Linear]:
                setattr(parent, name, FP8Linear(getattr(parent, name)))
                count += 1
    return count


def model_prefill(result, contexts, save, t0) -> None:
    """Whole-model layer-major prefill, bf16 then FP8 matrices, same weights and tokens."""
    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root))
    from storytransformer.engine.fastgen.config import ModelConfig
    from storytransformer.engine.fastgen.generate import Generator
    from storytransformer.engine.fastgen.kv_cache import StaticKVCache
    from storytransformer.engine.fastgen.model import build_model

    dev = torch.device("cuda")
    cfg = ModelConfig.qwen25_7b_1m()
    model = build_model(cfg, dev, torch.bfloat16, fused=True)
    gen_ids = torch.Generator(device=dev).manual_seed(1)
    tokens = torch.randint(cfg.vocab, (1, max(contexts)), device=dev, generator=gen_ids)
    cache = StaticKVCache(cfg, max(contexts) + 16, device=dev, dtype=torch.bfloat16)
    base = {}
    for fmt in ("bf16", "fp8"):
        if fmt == "fp8":
            result["notes"].append(f"fp8: {to_fp8(model)} matrices replaced")
            FUSED_QUANT["on"] = quantize_rows_fused is not None
            how = "the Triton kernel" if FUSED_QUANT["on"] else "torch ops"
            result["notes"].append(f"fp8 model activations quantised by {how}")
            torch.cuda.empty_cache()
        gen = Generator(model, cache, "triton", "matmul", chunk=8192, cuda_graph=False, layered=True)
        gen.prefill(tokens[:, :4096], start=0)  # warm: kernel selection, allocator growth
        for ctx in contexts:
            runs = []
            for _ in range(2):
                torch.cuda.synchronize()
                t = time.perf_counter()
                gen.prefill(tokens[:, :ctx], start=0)
                logits = gen.last_logits
                torch.cuda.synchronize()
                runs.append(time.perf_counter() - t)
            row = {"format": fmt, "context": ctx, "prefill_s": min(runs), "tokens_per_s": ctx / min(runs)}
            logp = torch.log_softmax(logits.float().view(-1), dim=-1)
            if fmt == "bf16":
                base[ctx] = logp
            else:
                row["last_position_kl_vs_bf16"] = float((base[ctx].exp() * (base[ctx] - logp)).sum())
                row["speedup"] = row["tokens_per_s"] / next(r["tokens_per_s"] for r in result["model"]
                                                            if r["format"] == "bf16" and r["context"] == ctx)
            result["model"].append(row)
            print(f"[{time.perf_counter() - t0:6.1f}s] model {row}", flush=True)
            save()
    del model, cache


def time_ms(fn, reps: int = 5) -> float:
    fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--rows", default="32768,131072")
    p.add_argument("--model-contexts", default="", help="whole-model prefill at these contexts (e.g. 32768)")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("fp8_prefill needs a CUDA GPU", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": [], "stack": [],
              "model": [], "notes": []}
    save = lambda: (args.out / "fp8_prefill.json").write_text(json.dumps(result, indent=1) + "\n")  # noqa: E731
    g = torch.Generator(device=dev).manual_seed(0)
    t0 = time.perf_counter()
    for m in [int(r) for r in args.rows.split(",") if r]:
        for name, n, k in FUSED:
            w = (torch.randn(n, k, device=dev, generator=g) * 0.02).to(torch.bfloat16)
            w8, w_scale = quantize_rows(w)
            x = torch.randn(m, k, device=dev, generator=g).to(torch.bfloat16)
            x[:, :8] *= 20  # a few outlier channels, as real activations have
            row = {"matrix": name, "n": n, "k": k, "rows": m}
            try:
                row["bf16_ms"] = time_ms(lambda: F.linear(x, w))
                row["fp8_ms"] = time_ms(lambda: fp8_linear(x, w8, w_scale))
                x8, xs = quantize_rows(x)
                row["fp8_product_only_ms"] = time_ms(
                    lambda: torch._scaled_mm(x8, w8.t(), scale_a=xs, scale_b=w_scale.t(), out_dtype=torch.bfloat16))
                row["quantize_activations_ms"] = time_ms(lambda: quantize_rows(x))
                if quantize_rows_fused is not None:
                    q1, s1 = quantize_rows(x[:512])
                    q2, s2 = quantize_rows_fused(x[:512])
                    row["fused_quant_scale_max_rel_diff"] = ((s1 - s2).abs() / s1).max().item()
                    row["fused_quant_codes_mismatch"] = (q1.float() != q2.float()).float().mean().item()
                    row["fused_quantize_ms"] = time_ms(lambda: quantize_rows_fused(x))
                    FUSED_QUANT["on"] = True
                    row["fp8_fused_ms"] = time_ms(lambda: fp8_linear(x, w8, w_scale))
                    FUSED_QUANT["on"] = False
                    row["speedup_fused"] = row["bf16_ms"] / row["fp8_fused_ms"]
                flops = 2 * m * n * k
                row["bf16_tflops"] = flops / row["bf16_ms"] / 1e9
                row["fp8_product_tflops"] = flops / row["fp8_product_only_ms"] / 1e9
                row["speedup"] = row["bf16_ms"] / row["fp8_ms"]
                sl = slice(0, 256)  # accuracy on a slice against a float32 product of the bf16 operands
                ref = x[sl].float() @ w.float().T
                for key, y in (("bf16", F.linear(x[sl], w)), ("fp8", fp8_linear(x[sl], w8, w_scale))):
                    row[f"{key}_rel_err"] = ((y.float() - ref).norm() / ref.norm()).item()
                del x8, xs
            except Exception as exc:  # noqa: BLE001 - keep the other rows
                row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            result["rows"].append(row)
            print(f"[{time.perf_counter() - t0:6.1f}s] {row}", flush=True)
            del w, w8, w_scale, x
            torch.cuda.empty_cache()
            save()
        sel = [r for r in result["rows"] if r["rows"] == m and "error" not in r]
        if len(sel) == len(FUSED):
            st = {"rows": m, "bf16_ms": LAYERS * sum(r["bf16_ms"] for r in sel),
                  "fp8_ms": LAYERS * sum(r["fp8_ms"] for r in sel)}
            st["speedup"] = st["bf16_ms"] / st["fp8_ms"]
            if all("fp8_fused_ms" in r for r in sel):
                st["fp8_fused_ms"] = LAYERS * sum(r["fp8_fused_ms"] for r in sel)
                st["speedup_fused"] = st["bf16_ms"] / st["fp8_fused_ms"]
            result["stack"].append(st)
            save()
    if args.model_contexts:
        try:
            model_prefill(result, [int(c) for c in args.model_contexts.split(",")], save, t0)
        except Exception as exc:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            result["notes"].append(f"model prefill failed: {type(exc).__name__}: {str(exc)[:300]}")
            save()
    lines = ["| matrix | rows | bf16 ms | fp8 ms (quantise + product) | of which quantise | bf16 TFLOP/s"
             " | fp8 product TFLOP/s | speed-up | rel. error bf16 / fp8 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['matrix']} | {r['rows']} | error: {r['error'][:80]} |||||||")
            continue
        lines.append(f"| {r['matrix']} | {r['rows']} | {r['bf16_ms']:.3f} | {r['fp8_ms']:.3f} | "
                     f"{r['quantize_activations_ms']:.3f} | {r['bf16_tflops']:.0f} | {r['fp8_product_tflops']:.0f} | "
                     f"{r['speedup']:.2f} | {r['bf16_rel_err']:.4f} / {r['fp8_rel_err']:.4f} |")
        if "fp8_fused_ms" in r:
            lines.append(f"| {r['matrix']} (Triton quantiser) | {r['rows']} | {r['bf16_ms']:.3f} | "
                         f"{r['fp8_fused_ms']:.3f} | {r['fused_quantize_ms']:.3f} | | | {r['speedup_fused']:.2f} | |")
    lines += ["", "| 28 layers' products | rows | bf16 ms | fp8 ms | speed-up |", "|---|---:|---:|---:|---:|"]
    for s in result["stack"]:
        lines.append(f"| wqkv, wo, w13, w2 | {s['rows']} | {s['bf16_ms']:.1f} | {s['fp8_ms']:.1f} | "
                     f"{s['speedup']:.2f} |")
        if "fp8_fused_ms" in s:
            lines.append(f"| the same, Triton quantiser | {s['rows']} | {s['bf16_ms']:.1f} | {s['fp8_fused_ms']:.1f} | "
                         f"{s['speedup_fused']:.2f} |")
    if result["model"]:
        lines += ["", "| whole model prefill | context | s | tokens/s | speed-up | last-position KL vs bf16 |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in result["model"]:
            lines.append(f"| {r['format']} | {r['context']} | {r['prefill_s']:.3f} | {r['tokens_per_s']:,.0f} | "
                         f"{r.get('speedup', 1.0):.2f} | {r.get('last_position_kl_vs_bf16', 0.0):.4f} |")
    text = "\n".join(lines)
    print(text)
    (args.out / "fp8_prefill.md").write_text(text + "\n")
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark output: JSON, a Markdown report and PNG plots, each written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

GB = 1e9


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def output_paths(out: Path, prefix: str) -> dict[str, Path]:
    return {kind: out / f"{prefix}{suffix}" for kind, suffix in
            (("json", ".json"), ("md", ".md"), ("memory", "_memory.png"), ("prefill", "_prefill.png"),
             ("decode", "_decode.png"))}


def rewrite(json_path: Path) -> None:
    """Markdown and plots again from a saved JSON (e.g. after a run cut short by a timeout)."""
    result = json.loads(json_path.read_text("utf-8"))
    write_outputs(result, output_paths(json_path.parent, json_path.stem))


def write_outputs(result: dict, paths: dict[str, Path], plots: bool = True) -> None:
    if plots and (result.get("prefill") or result.get("decode")):
        plot(result, paths)  # first: it may add a note
    _atomic_write(paths["json"], (json.dumps(result, indent=1, default=str) + "\n").encode())
    _atomic_write(paths["md"], markdown(result, {k: p.name for k, p in paths.items()}).encode())


def _fmt(value, spec: str, scale: float = 1.0) -> str:
    return "" if value is None else format(value * scale if scale != 1.0 else value, spec)


def _k(context: int) -> str:
    return f"{context // 1024}k" if context % 1024 == 0 else str(context)


def markdown(result: dict, names: dict[str, str]) -> str:
    env, limits, model, opts = result["environment"], result.get("limits") or {}, result["model"], result["options"]
    lines = ["# Long-context prefill and decoding on the GPU", "",
             f"{env.get('gpu') or env.get('cpu') or env['device']}, {env['date']}; torch {env['torch']} "
             f"(CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}), transformers {env.get('transformers')}, "
             f"triton {env.get('triton')}, flash-attn {env.get('flash_attn')}, Python {env['python']}.", "",
             f"Model: {model['name']} shape, {model['n_layers']} layers, hidden {model['dim']}, "
             f"{model['n_heads']} query / {model['n_kv_heads']} KV heads of {model['head_dim']}, vocabulary "
             f"{model['vocab']}, {opts['dtype']} random weights"
             + (f", {model['params'] / 1e9:.2f}B parameters ({model['weight_bytes'] / GB:.1f} GB), "
                f"KV cache {model['kv_bytes_per_token'] / 1024:.0f} KiB/token" if "params" in model else "") + ".",
             "",
             f"Measured limits (same run): bf16 matrix product {_fmt(limits.get('matmul_tflops'), '.0f')} TFLOP/s, "
             f"copy bandwidth {_fmt(limits.get('copy_gbps'), ',.0f')} GB/s (read + write)"
             + (f"; the same product repeated for {limits['sustained_s']:.0f} s: {limits['sustained_tflops']:.0f} "
                f"TFLOP/s (the yardstick stays the burst peak)" if limits.get("sustained_tflops") else "") + ". "
             f"Prefill chunk {opts['chunk']} tokens, "
             + ("layer-major (attention over the whole context once per layer)"
                if opts.get("prefill_mode", "chunked") == "layered" else "token-major (each chunk through every layer)")
             + (", fused Triton norms, rotary and SwiGLU" if opts.get("fused") else ", plain torch norms, rotary and SwiGLU")
             + f"; decoding timed over {opts['decode_tokens']} tokens.", ""]
    if not result.get("complete"):
        lines += ["**Partial results**: the run ended before every measurement was made.", ""]
    lines += ["## Prefill", "",
              "| attention | context | status | prefill s | tokens/s | TFLOP/s | of peak | peak memory GB | "
              "warm TTFT ms | cold TTFT s | warm-up s |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["prefill"]:
        if r["status"] != "ok":
            lines.append(f"| {r['attn']} | {_k(r['context'])} | {r['status']}: {r['reason']} | | | | | | | | |")
            continue
        lines.append(f"| {r['attn']} | {_k(r['context'])} | ok | {r['prefill_s']:.3f} | {r['tokens_per_s']:,.0f} | "
                     f"{r['tflops']:.1f} | {r['ratio_to_peak']:.0%} | {_fmt(r['peak_memory_bytes'], '.1f', 1 / GB)} | "
                     f"{_fmt(r.get('ttft_warm_s'), '.0f', 1e3)} | {_fmt(r.get('ttft_cold_s'), '.2f')} | "
                     f"{_fmt(r.get('attention_warmup_s'), '.2f')} |")
    lines += ["", "Warm TTFT: a request of "
              f"{opts['suffix_tokens']} new tokens after the context already resident in the cache (the prefix "
              "cache); cold TTFT: the whole context prefilled first. Warm-up: one layer's attention on the "
              "context's shapes, run once before the timed prefill so that kernel plans (cuDNN builds one per new "
              "shape) exist, as in a resident engine that has served this size before; it includes one layer's "
              "attention work.", "",
              "## Decoding", "",
              "| kernel | context | status | ms/token (graph) | bound ms | × bound | ms/token without graph | × bound |",
              "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in result["decode"]:
        if r["status"] != "ok":
            lines.append(f"| {r['attn']} | {_k(r['context'])} | {r['status']}: {r['reason']} | | | | | |")
            continue
        lines.append(f"| {r['attn']} | {_k(r['context'])} | ok{'' if r['cuda_graph'] else ' (no graph)'} | "
                     f"{r['ms_per_token']:.2f} | {r['bound_ms']:.2f} | {r['ratio_to_bound']:.2f} | "
                     f"{r['eager_ms_per_token']:.2f} | {r['eager_ratio_to_bound']:.2f} |")
    lines += ["", "Bound: bytes of all weights (one embedding row) and of the KV cache read per token, over the "
              "measured copy bandwidth. Without graph: the same step issued op by op from Python.", ""]
    lines += [f"- {r['attn']} @ {_k(r['context'])}: CUDA graph capture failed: {r['graph_error']}"
              for r in result["decode"] if r.get("graph_error")]
    base = result.get("transformers_baseline")
    if base:
        lines += [f"Plain transformers {base['transformers']} `generate` (dynamic cache, SDPA) of the same shape at "
                  f"{_k(base['context'])}: {base['ms_per_token']:.2f} ms/token"
                  + (f" ({base['ratio_to_bound']:.1f}× the bound), {base['speedup']:.1f}× the time of "
                     f"fastgen's {base['fastgen_kernel']} ({base['fastgen_ms_per_token']:.2f} ms)"
                     if base.get("speedup") else "") + ".", ""]
    lines += _variants(result.get("variants") or []) + _quantized(result.get("quantized") or [])
    lines += _kv_cache(result.get("kv_cache") or []) + _capped(result.get("capped") or [])
    lines += _accuracy(result.get("accuracy") or [])
    if result.get("unavailable"):
        lines += ["## Not measured", ""] + [f"- {k}: {v}" for k, v in result["unavailable"].items()] + [""]
    if result.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]
    lines += [f"![memory]({names['memory']}) ![prefill]({names['prefill']}) ![decode]({names['decode']})", "",
              f"Raw figures: `{names['json']}`.", ""]
    return "\n".join(lines)


def _variants(rows: list[dict]) -> list[str]:
    """The stage and prefill-mode comparison: one context and attention, one run."""
    if not rows:
        return []
    lines = ["## What each change is worth (same run, same context)", "",
             "| step | attention | context | stages | prefill mode | prefill s | of peak | decode ms/token | × bound |",
             "|---|---|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        stages = "fused Triton" if r["fused"] else "plain torch"
        if r["kind"] == "prefill":
            lines.append(f"| prefill | {r['attn']} | {_k(r['context'])} | {stages} | {r['mode']} | "
                         f"{r['seconds']:.3f} | {r['ratio_to_peak']:.0%} | | |")
        else:
            lines.append(f"| decode (graph) | {r['attn']} | {_k(r['context'])} | {stages} | | | | "
                         f"{_fmt(r['ms_per_token'], '.2f')} | {_fmt(r['ratio_to_bound'], '.2f')} |"
                         + (f" {r['error']}" if r.get("error") else ""))
    return lines + [""]


def _quantized(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["## Weight formats (same run)", "",
             "| weights | status | context | weights GB | peak memory GB | prefill tokens/s | × bf16 | "
             "decode ms/token | bound ms | × bound | decode speed-up over bf16 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['format']} | {r['status']}: {r['reason']} | {_k(r['context']) if 'context' in r else ''}"
                         " | | | | | | | | |")
            continue
        base = next((b for b in rows if b["format"] in ("bf16", "fp32") and b["status"] == "ok"
                     and b.get("context") == r.get("context")), None)
        speed = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}" if base else ""
        decode = f"{base['ms_per_token'] / r['ms_per_token']:.2f}" if base else ""
        lines.append(f"| {r['format']} | ok{'' if r['cuda_graph'] else ' (no graph)'} | {_k(r['context'])} | "
                     f"{_fmt(r['weights_bytes'], '.2f', 1 / GB)} | {_fmt(r['peak_memory_bytes'], '.1f', 1 / GB)} | "
                     f"{r['tokens_per_s']:,.0f} | {speed} | {r['ms_per_token']:.2f} | {_fmt(r.get('bound_ms'), '.2f')} | "
                     f"{_fmt(r.get('ratio_to_bound'), '.2f')} | {decode} |")
    return lines + ["", "Weights GB: bytes of every parameter and buffer of the model (packed codes and scales "
                    "included; the output head and embeddings stay bf16). × bf16: ratio of prefill tokens/s at the "
                    "same context. Bound: the model's bytes (one embedding row) and the cache read per token over "
                    "the measured copy bandwidth. Speed-up: bf16 decode time over this format's.", ""]


def _kv_cache(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["## 8-bit KV cache against bf16 (bf16 weights, same run)", "",
             "| cache | context | status | cache GB | prefill tokens/s | decode ms/token | bound ms | × bound |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['kv']} | {_k(r['context'])} | {r['status']}: {r['reason']} | | | | | |")
            continue
        lines.append(f"| {r['kv']} | {_k(r['context'])} | ok | {r['cache_bytes'] / GB:.2f} | {r['tokens_per_s']:,.0f} | "
                     f"{r['ms_per_token']:.2f} | {r['bound_ms']:.2f} | {r['ratio_to_bound']:.2f} |")
    return lines + ["", "fp8: e4m3 keys and values with one float32 scale per position and key/value head, read "
                    "directly by the Triton prefill and split-K decode kernels.", ""]


def _capped(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["## Under a memory cap (torch.cuda.set_per_process_memory_fraction)", "",
             "| cap GiB | weights | cache | status | cache capacity tokens | context resident | prefill s | "
             "warm TTFT ms | decode ms/token | peak memory GB |", "|---:|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        tail = "" if r["status"] == "ok" else f": {r.get('reason', '')}"
        lines.append(f"| {r['cap_gb']} | {r['weights']} | {r['kv']} | {r['status']}{tail} | "
                     f"{_fmt(r.get('capacity_tokens'), ',')} | {_fmt(r.get('context'), ',')} | "
                     f"{_fmt(r.get('prefill_s'), '.1f')} | {_fmt(r.get('warm_ttft_ms'), '.0f')} | "
                     f"{_fmt(r.get('ms_per_token'), '.2f')} | {_fmt(r.get('peak_memory_bytes'), '.1f', 1 / GB)} |")
    return lines + ["", "Capacity: the largest cache that fits beside the weights and one 4096-token chunk's "
                    "activations under the cap; context: the prefix prefilled into it (token-major chunks of 4096, "
                    "Triton attention over the 8-bit cached prefix). Warm TTFT: a 256-token request on top of it. "
                    "Peak memory: torch.cuda.max_memory_allocated (the CUDA context, about 0.5 GB on a "
                    "workstation card, is outside it).", ""]


def _accuracy(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["## Accuracy against bf16 weights and a bf16 cache", "",
             "| model | weights | cache | status | prompts | positions | mean KL (nats) | identical greedy continuations |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['model']} | {r['weights']} | {r['kv']} | {r['status']}: {r['reason']} | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['weights']} | {r['kv']} | ok | {r['prompts']} | {r['positions']:,} | "
                     f"{r['mean_kl']:.4f} | {r['identical_share']:.0%} ({round(r['identical_share'] * r['prompts'])}"
                     f"/{r['prompts']}, {r['new_tokens']} tokens) |")
    return lines + ["", "Mean KL: KL(bf16 ‖ format) of the next-token distributions at every prompt position, "
                    "averaged over all positions of all prompts. Identical: the greedy continuation equals bf16's "
                    "token for token.", ""]

def plot(result: dict, paths: dict[str, Path]) -> None:
    """Peak memory and prefill tokens/s against context per attention; decode ms/token against its bound."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        note = "matplotlib is not installed: no plots"
        if note not in result["notes"]:
            result["notes"].append(note)
        return
    ok = [r for r in result["prefill"] if r["status"] == "ok"]
    series = sorted({r["attn"] for r in ok})
    for kind, key, scale, ylabel in (("memory", "peak_memory_bytes", 1 / GB, "peak GPU memory (GB)"),
                                     ("prefill", "tokens_per_s", 1.0, "prefill tokens/s")):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for name in series:
            rows = [r for r in ok if r["attn"] == name and r.get(key) is not None]
            if rows:
                ax.plot([r["context"] for r in rows], [r[key] * scale for r in rows], marker="o", label=name)
        if kind == "memory" and "weight_bytes" in result["model"]:
            xs = sorted({r["context"] for r in ok})
            per = result["model"]["kv_bytes_per_token"]
            ax.plot(xs, [(result["model"]["weight_bytes"] + per * x) / GB for x in xs], "k--",
                    label="weights + KV cache")
        _finish(ax, ylabel, fig, paths[kind])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    done = [r for r in result["decode"] if r["status"] == "ok"]
    for name in sorted({r["attn"] for r in done}):
        rows = [r for r in done if r["attn"] == name]
        ax.plot([r["context"] for r in rows], [r["ms_per_token"] for r in rows], marker="o", label=name)
    by_context = {r["context"]: r["bound_ms"] for r in done}
    if by_context:
        xs = sorted(by_context)
        ax.plot(xs, [by_context[x] for x in xs], "k--", label="bandwidth bound")
    _finish(ax, "decode ms/token", fig, paths["decode"])


def _finish(ax, ylabel: str, fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    ax.set_xscale("log", base=2)
    ax.set_xlabel("context (tokens)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)

"""Prompt (prefill) and generation (decode) throughput of a small causal LM on the CPU, for the
defaults of ``storytransformer estimate`` (``[tool.storytransformer.estimate]``).

Speed does not depend on the weights' values, so by default the model is built with random
weights in the shape of the packaged SmolLM2-135M (a machine without the model can run it);
``--model DIR`` loads a real safetensors directory instead. Prints a table and writes
docs/benchmarks/estimate_throughput.{json,md} (or --out DIR).

    python benchmarks/estimate_throughput.py --threads 1 2 4
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path

# The packaged SmolLM2-135M-Instruct (LlamaForCausalLM), from its converted config.json.
SMOLLM2_135M = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                    num_key_value_heads=3, head_dim=64, vocab_size=49152, max_position_embeddings=8192,
                    rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=100000.0)


def build(model_dir: str | None):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if model_dir:
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval(), Path(model_dir).name
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**SMOLLM2_135M)).eval(), "SmolLM2-135M shape, random weights"


def measure(model, prompt_tokens: int, new_tokens: int, repeats: int) -> tuple[float, float]:
    import torch

    x = torch.randint(10, 40000, (1, prompt_tokens))
    best_prefill = best_total = float("inf")
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            best_prefill = min(best_prefill, time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
            best_total = min(best_total, time.perf_counter() - t0)
            assert out.shape[1] == prompt_tokens + new_tokens
    prefill = prompt_tokens / best_prefill
    decode = (new_tokens - 1) / max(best_total - best_prefill, 1e-9)  # the first new token comes from the prefill
    return prefill, decode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a safetensors model directory (default: random weights in SmolLM2-135M's shape)")
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--prompt-tokens", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "benchmarks")
    args = ap.parse_args()

    import torch
    import transformers

    import os

    load_before = os.getloadavg()[0]
    model, label = build(args.model)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for n in args.prompt_tokens:
            prefill, decode = measure(model, n, args.new_tokens, args.repeats)
            rows.append({"threads": threads, "prompt_tokens": n, "prefill_tokens_per_s": round(prefill, 1),
                         "decode_tokens_per_s": round(decode, 1)})
            print(f"threads {threads:2d}  prompt {n:5d}  prefill {prefill:8.1f} tok/s  decode {decode:6.1f} tok/s", flush=True)
    result = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "model": label,
              "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
              "transformers": transformers.__version__, "dtype": "float32", "new_tokens": args.new_tokens,
              "cpus": os.cpu_count(), "load_average_before": round(load_before, 2),
              "load_average_after": round(os.getloadavg()[0], 2), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "estimate_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# CPU throughput for `estimate` ({result['date']})", "",
             f"Model: {label}; float32; torch {result['torch']}, transformers {result['transformers']}; "
             f"CPU: {_cpu_name()} ({result['cpus']} cores); decode = {args.new_tokens} new tokens, best of {args.repeats}; "
             f"load average {result['load_average_before']} before, {result['load_average_after']} after "
             "(other work on the machine slows every figure down).", "",
             "| threads | prompt tokens | prefill tokens/s | decode tokens/s |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['threads']} | {r['prompt_tokens']} | {r['prefill_tokens_per_s']} | {r['decode_tokens_per_s']} |" for r in rows]
    (args.out / "estimate_throughput.md").write_text("\n".join(lines) + "\n")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()

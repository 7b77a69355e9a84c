"""Accuracy of every weight and cache format on the packaged SmolLM2-135M-Instruct real weights (the
only real model at hand), against the same model in bf16 with a bf16 cache: mean KL of next-token
distributions over backlog prompts, and the share of identical greedy continuations.

    python3 benchmarks/gpu/accuracy_real.py --prompts prompts.json --out DIR [--device cuda] [--model FILE]

``--model`` names the GGUF file (or model directory) when the packaged one is not installed where this
runs, e.g. a copy of the package's file carried to a benchmark GPU; the default is the packaged model.

Runs on the CPU too (plain torch stages, eager attention, the torch references of the 8-bit cache and
of int4; bitsandbytes' CPU kernels for int8 / NF4), so that it can run where the model files are. The
rows land in DIR/gpu_accuracy_real.json and its Markdown; docs/benchmarks/gpu.json carries them in its
``accuracy`` list.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", required=True, help="token-id lists (prompts.py)")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", default="", help="GGUF file or model directory (default: the packaged model)")
    p.add_argument("--formats", default="", help="WEIGHTS:KV pairs, e.g. int4:bf16,int4_head:bf16 (int4_head: "
                   "the output head in int4 too); default: formats.ACCURACY_FORMATS")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    from benchmarks.gpu import formats
    from benchmarks.gpu.report import _accuracy
    from storytransformer.config import Config, EngineConfig
    from storytransformer.engine.fastgen.checkpoint import from_hf_model
    from storytransformer.engine.local import local_backend

    # the plain transformers backend: its model and tokenizer are the packaged ones, no fast path around them
    engine = local_backend(Config(engine=EngineConfig(model=args.model, generate=False, device="cpu", fast_path="off")))
    engine.load()
    device = torch.device(args.device)
    hf = engine.model.to(device=device, dtype=torch.bfloat16)
    prompts = json.loads(Path(args.prompts).read_text("utf-8"))[:args.count]
    fused = device.type == "cuda"

    class Context:
        pass

    ctx = Context()
    ctx.device, ctx.dtype, ctx.fused = device, torch.bfloat16, fused
    ctx.prefill_attn, ctx.decode_attn = ("triton", "triton") if fused else ("eager", "matmul")
    ctx.result = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "device": str(device),
                  "torch": torch.__version__, "model": "SmolLM2-135M-Instruct", "accuracy": []}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "gpu_accuracy_real.json"

    def save():
        path.write_text(json.dumps(ctx.result, indent=1) + "\n", "utf-8")
        (args.out / "gpu_accuracy_real.md").write_text("\n".join(_accuracy(ctx.result["accuracy"])) + "\n", "utf-8")

    ctx.save, ctx.log = save, lambda line: print(line, flush=True)
    started = time.perf_counter()
    with torch.no_grad():
        chosen = (tuple(tuple(f.split(":")) for f in args.formats.split(",")) if args.formats
                  else formats.ACCURACY_FORMATS)
        formats.measure_accuracy(ctx, "SmolLM2-135M-Instruct (real weights)", lambda: from_hf_model(hf, fused=fused),
                                 prompts, formats=chosen, new_tokens=args.new_tokens)
    ctx.result["elapsed_s"] = round(time.perf_counter() - started, 1)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command-line options of the GPU benchmark, without torch (the CLI registers them at start-up)."""

from __future__ import annotations

import argparse

DEFAULT_CONTEXTS = "4k,16k,32k,128k"
DEFAULT_LONG_CONTEXTS = "512k"
TINY_CONTEXTS = "64,256"


def parse_sizes(text: str) -> list[int]:
    """'4k,16k,1m,300' -> [4096, 16384, 1048576, 300]; an empty string gives []."""
    sizes = []
    for item in filter(None, (part.strip().lower() for part in text.split(","))):
        scale = {"k": 1024, "m": 1024 * 1024}.get(item[-1], 1)
        digits = item[:-1] if scale > 1 else item
        if not digits.isdigit() or int(digits) <= 0:
            raise argparse.ArgumentTypeError(f"not a positive token count: {item!r} (use e.g. 4096 or 4k)")
        sizes.append(int(digits) * scale)
    return sizes


def parse_names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--contexts", type=parse_sizes, default=None,
                   help=f"context lengths in tokens (default {DEFAULT_CONTEXTS}; with --tiny {TINY_CONTEXTS})")
    p.add_argument("--long-contexts", type=parse_sizes, default=None,
                   help=f"longer contexts measured with the fastest attention only, when memory and the time budget "
                        f"allow (default {DEFAULT_LONG_CONTEXTS}; '' for none)")
    p.add_argument("--attn", type=parse_names, default=None,
                   help="prefill attention implementations (default: cudnn_split,triton,sdpa_cudnn,sdpa_flash,"
                        "sdpa_efficient,flash_attn,eager; those unavailable are reported and skipped)")
    p.add_argument("--decode-attn", type=parse_names, default=None,
                   help="decode attention kernels (default matmul,triton)")
    p.add_argument("--out", default=None, help="output directory (default docs/benchmarks/ of the repository)")
    p.add_argument("--tiny", action="store_true", help="a 2-layer model of hidden size 64 (smoke test, runs on CPU)")
    p.add_argument("--device", default="cuda", help="cuda (default) or, with --tiny, cpu")
    p.add_argument("--smoke", action="store_true", help="4k context (64 with --tiny), sdpa_flash, about a minute")
    p.add_argument("--chunk", type=int, default=None, help="prefill chunk in tokens (default 8192; 32 with --tiny)")
    p.add_argument("--decode-tokens", type=int, default=32, help="decoding steps timed per measurement (default 32)")
    p.add_argument("--suffix-tokens", type=int, default=None,
                   help="tokens prefilled after a warm prefix, for the time to the first token (default 256)")
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="stop starting measurements predicted to end after this many seconds (default 420)")
    p.add_argument("--no-hf-baseline", action="store_true",
                   help="skip timing plain transformers generate() of the same shape at the first context")
    p.add_argument("--replot", metavar="JSON", default=None,
                   help="only rewrite the Markdown and plots from a saved JSON result (no measurement)")
    p.add_argument("--prefill-mode", choices=("layered", "chunked"), default="layered",
                   help="layered (default): each layer over the whole context, attention in one call per layer, "
                        "projections and MLP in chunks; chunked: each chunk through every layer")
    p.add_argument("--no-fused", action="store_true",
                   help="plain torch norms, rotary and SwiGLU instead of the fused Triton kernels")
    p.add_argument("--quant", type=parse_names, default=None,
                   help="weight formats compared with bf16: int8 and nf4 (bitsandbytes), int4 (this project's "
                        "kernels) (default int8,nf4,int4 on CUDA; '' for none)")
    p.add_argument("--quant-contexts", type=parse_sizes, default=None,
                   help="contexts of the weight-format comparison (default: the first context)")
    p.add_argument("--kv-contexts", type=parse_sizes, default=None,
                   help="contexts at which the 8-bit KV cache is compared with bf16 (default none; e.g. 4k,32k,128k)")
    p.add_argument("--capped", type=parse_sizes, default=None,
                   help="memory caps in GiB for the resident-backlog run with 4-bit weights and the 8-bit cache "
                        "(e.g. 24,16; default none)")
    p.add_argument("--capped-context", type=parse_sizes, default=None,
                   help="fill a capped cache with at most this many tokens (default: as many as fit)")
    p.add_argument("--accuracy", type=int, default=0, metavar="PROMPTS",
                   help="accuracy of every format against bf16 over this many prompts (default 0: not measured)")
    p.add_argument("--prompts", default=None, metavar="JSON",
                   help="token-id lists for --accuracy (benchmarks/gpu/prompts.py makes them from backlogs; "
                        "default: random token ids)")
    p.add_argument("--no-sweep", action="store_true",
                   help="skip the attention x context sweep (prefill and decode tables): measure only the limits "
                        "and what the options above ask for")
    p.add_argument("--compile", action="store_true",
                   help="also time decoding compiled with torch.compile at the first context (slow to compile)")

"""``storytransformer bench gpu``: long-context prefill and decoding speed on an NVIDIA GPU, against
the matrix-product peak and the memory bandwidth measured in the same run (see docs/gpu.md).

The harness lives in the repository's benchmarks/gpu/, beside the other benchmarks, not in the
installed package: this command runs it from a source checkout and says so elsewhere."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu"


def _harness(module: str):
    """benchmarks.gpu.<module> of the checkout this package runs from, or None outside a checkout."""
    if not (HARNESS / f"{module}.py").is_file():
        return None
    root = str(HARNESS.parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    import importlib

    return importlib.import_module(f"benchmarks.gpu.{module}")


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure the engine's speed", description="Measure the engine's speed.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    g = actions.add_parser("gpu", help="long-context prefill and decoding on a CUDA GPU",
                           description="Build a 7.6B-parameter long-context decoder (Qwen2.5-7B-Instruct-1M shape, "
                                       "random bf16 weights) on the GPU and measure prefill, decoding, memory and the "
                                       "warm-prefix time to the first token for each attention implementation and "
                                       "context length. Writes JSON, Markdown and PNG plots. Runs from a source "
                                       "checkout (the harness is benchmarks/gpu/).")
    options = _harness("options")
    if options is not None:
        options.add_arguments(g)
    else:
        g.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    g.set_defaults(func=run_gpu)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def run_gpu(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("storytransformer bench gpu: PyTorch is not installed (pip install 'storytransformer[engine]')",
              file=sys.stderr)
        return 2
    bench = _harness("bench")
    if bench is None:
        print(f"storytransformer bench gpu: the benchmark harness is not here ({HARNESS} is missing); run it from a "
              "source checkout: python3 benchmarks/gpu_bench.py", file=sys.stderr)
        return 2
    return bench.main(args)

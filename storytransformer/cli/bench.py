"""``storytransformer bench gpu``: long-context prefill and decoding speed on an NVIDIA GPU, against
the matrix-product peak and the memory bandwidth measured in the same run (see docs/gpu.md)."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure the engine's speed", description="Measure the engine's speed.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    g = actions.add_parser("gpu", help="long-context prefill and decoding on a CUDA GPU",
                           description="Build a 7.6B-parameter long-context decoder (Qwen2.5-7B-Instruct-1M shape, "
                                       "random bf16 weights) on the GPU and measure prefill, decoding, memory and the "
                                       "warm-prefix time to the first token for each attention implementation and "
                                       "context length. Writes JSON, Markdown and PNG plots.")
    from ..engine.fastgen.options import add_arguments

    add_arguments(g)
    g.set_defaults(func=run_gpu)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def run_gpu(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("storytransformer bench gpu: PyTorch is not installed (pip install 'storytransformer[engine]')",
              file=sys.stderr)
        return 2
    from ..engine.fastgen.bench import main

    return main(args)

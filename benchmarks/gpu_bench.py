"""Long-context prefill and decoding on an NVIDIA GPU (issue 8): the same run measures the bf16
matrix-product peak and the copy bandwidth, then, for each attention implementation and context,
prefill time, tokens/s, TFLOP/s against the peak, decode ms/token against the bandwidth bound,
peak memory and the warm-prefix time to the first token. Writes gpu.json, gpu.md and PNG plots
(default docs/benchmarks/), after every measurement so that a timeout keeps what was measured.

    python3 benchmarks/gpu_bench.py --smoke --out DIR          # about a minute: 4k, sdpa_flash
    python3 benchmarks/gpu_bench.py --out DIR --budget-s 360   # the full run
    python3 benchmarks/gpu_bench.py --tiny --device cpu --out DIR     # CPU smoke test of the code

Runs from a bare checkout: only torch is required (numpy, matplotlib and triton when present).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_harness():
    """The harness in benchmarks/gpu/ (it loads fastgen through the project, or on its own on a bare
    machine that has torch only)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.gpu import bench, options

    return bench, options


def main(argv: list[str] | None = None) -> int:
    bench, options = load_harness()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = str(ROOT / "docs" / "benchmarks")
    return bench.main(args)


if __name__ == "__main__":
    sys.exit(main())

"""Fast long-context generation in plain PyTorch, in the spirit of gpt-fast.

A compact decoder (the shape of Qwen2.5-7B-Instruct-1M by default) built straight on the
target device, a static pre-allocated KV cache, chunked prefill so that memory stays linear
in the context, decoding captured as a CUDA graph, and a benchmark that measures all of it
against the matrix-unit peak and the memory-bandwidth bound of the same GPU.

Importing this package is cheap: torch loads with ``model``, ``cache``, ``generate`` and ``bench``.
Every module here imports its siblings relatively, so ``benchmarks/gpu_bench.py`` can also load
the package on its own where the rest of the project's dependencies are not installed.
"""

"""Programmatic dependent launch (PDL) for the Triton kernels of a decoding step.

A decoding step is about 290 small kernels, replayed from a CUDA graph. Between two of them the GPU
drains the first, then launches and schedules the second: about 0.35 us a kernel, 0.1 ms a token
(docs/benchmarks/gpu_int4.md, "between kernels"), and each kernel's programs start cold. With PDL
(CUDA, Hopper and newer), a kernel launched with ``launch_pdl`` may be scheduled while the previous one
still runs: its programs become resident, then wait (``griddepcontrol.wait``) until the previous kernel
has finished and its writes are visible, and only then load or store anything. Once waiting is over a
program lets the next kernel launch (``griddepcontrol.launch_dependents``). What overlaps is the launch
and the scheduling, never a memory access, so the arithmetic and its order are unchanged: every kernel
launched this way calls :func:`gate` before its first load.

Off in Triton's CPU interpreter, on ROCm and before sm_90 (the instructions do not exist), and when
``STORYTRANSFORMER_PDL=0``; :data:`ENABLED` switches it off in-process (the benchmark's ``+no_pdl``).
"""

from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
ENABLED = os.environ.get("STORYTRANSFORMER_PDL", "1") != "0"


@functools.lru_cache(maxsize=None)
def _hardware(index: int) -> bool:
    if getattr(torch.version, "hip", None):
        return False
    return torch.cuda.get_device_capability(index) >= (9, 0)


def enabled(device: torch.device | str) -> bool:
    """Whether kernels on ``device`` are launched with PDL."""
    device = torch.device(device)
    if not ENABLED or INTERPRETED or device.type != "cuda":
        return False
    return _hardware(device.index if device.index is not None else torch.cuda.current_device())


def launch(on: bool) -> dict:
    """The launch options of a kernel whose ``PDL`` argument is ``on``."""
    return {"launch_pdl": True} if on else {}


@triton.jit
def gate(PDL: tl.constexpr):
    """First thing in a kernel launched with PDL: wait for the previous kernel, then let the next one launch."""
    if PDL:
        gdc_wait()
        gdc_launch_dependents()

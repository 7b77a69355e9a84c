"""Which kernels exist on the device in use: NVIDIA CUDA, AMD ROCm (a torch built with HIP, which
also answers to ``torch.cuda``), or the CPU.

ROCm builds of torch report ``torch.version.hip`` and run the same Python code, but cuDNN does not
exist there, so the cuDNN attention paths (``sdpa_cudnn`` and this project's ``cudnn_split``) are
never chosen. Triton compiles for AMD GPUs, and torch's SDPA has flash and memory-efficient kernels
there (through AOTriton). An 8-bit e4m3 cache needs the OCP e4m3 format (``float8_e4m3fn``), which
AMD has natively from gfx950 (MI350) and RDNA4 (gfx12); MI300 (gfx942) has only the "fnuz" variant,
so the fp8 cache is refused there with that reason. bitsandbytes needs its ROCm build. None of this
has been run on an AMD GPU: the selection is tested with the ROCm facts mocked (docs/gpu.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CUDNN_ONLY = ("sdpa_cudnn", "cudnn_split")
OCP_FP8_ARCHS = ("gfx950", "gfx12")  # AMD architectures with float8_e4m3fn in hardware


@dataclass(frozen=True)
class GpuPlatform:
    kind: str  # "cuda", "rocm" or "cpu"
    arch: str = ""  # "sm_90" on NVIDIA, "gfx942" and the like on AMD
    hip: str | None = None  # torch.version.hip on ROCm
    capability: tuple[int, int] = (0, 0)  # NVIDIA compute capability

    @property
    def rocm(self) -> bool:
        return self.kind == "rocm"


def detect(device="cuda") -> GpuPlatform:
    """The platform of ``device`` from what torch reports (no kernel is run)."""
    device = torch.device(device)
    if device.type != "cuda":
        return GpuPlatform("cpu")
    hip = getattr(torch.version, "hip", None)
    if hip:
        props = torch.cuda.get_device_properties(device)
        return GpuPlatform("rocm", getattr(props, "gcnArchName", "").split(":")[0], hip)
    major, minor = torch.cuda.get_device_capability(device)
    return GpuPlatform("cuda", f"sm_{major}{minor}", capability=(major, minor))


def prefill_unavailable(impl: str, found: GpuPlatform) -> str | None:
    """Why a prefill attention does not exist on this platform, or None."""
    if found.rocm and impl in CUDNN_ONLY:
        return f"{impl} needs cuDNN, which ROCm does not have (use triton or sdpa_flash there)"
    if found.rocm and impl == "flash_attn":
        return None  # the ROCm build of flash-attn exists; its import decides
    return None


def kv_cache_unavailable(kv: str, found: GpuPlatform) -> str | None:
    """Why a KV cache format cannot run on this platform, or None."""
    if kv != "fp8":
        return None
    if found.kind == "cuda" and found.capability < (8, 9):
        return f"an fp8 KV cache needs e4m3 conversions in hardware (sm_89 or newer), this GPU is {found.arch}"
    if found.rocm and not found.arch.startswith(OCP_FP8_ARCHS):
        return (f"an fp8 KV cache stores OCP e4m3 (float8_e4m3fn), which {found.arch or 'this AMD GPU'} does not "
                f"have (gfx950 or gfx12 do); use kv_cache = \"bf16\"")
    return None


def weights_unavailable(fmt: str, found: GpuPlatform) -> str | None:
    """Why a weight format cannot run on this platform, or None (a missing package is reported on import)."""
    if fmt in ("int8", "nf4") and found.rocm:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            return "int8 and nf4 weights need the ROCm build of bitsandbytes, which is not installed"
    return None

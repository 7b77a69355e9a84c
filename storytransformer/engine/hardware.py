"""Choosing device, precision, attention kernel and weight quantization for this machine.

:func:`probe` reads the facts (GPU, compute capability, installed kernels); :func:`plan` is a
pure function of the configuration and those facts, so the choice can be tested without the
hardware. An impossible request raises :class:`EngineConfigError` naming the setting.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from .. import hf_imports
from ..config import EngineConfig
from .contract import EngineConfigError

DTYPES = ("auto", "bfloat16", "float16", "float32")
ATTENTIONS = ("auto", "flash_attention_2", "sdpa", "eager")
QUANTIZATIONS = ("none", "int8", "nf4", "int4")
BNB_QUANTIZATIONS = ("int8", "nf4")  # loaded by transformers through bitsandbytes; int4 is the fast path's own
KV_CACHES = ("bf16", "fp8")
FLASH_ATTN_MIN_CC = (8, 0)  # flash-attn 2 needs Ampere or newer


@dataclass(frozen=True)
class Capabilities:
    """What this machine can run (probed, or injected by tests)."""

    cuda_devices: int = 0
    compute_capability: tuple[int, int] | None = None  # of the device we would use
    gpu_name: str = ""
    bf16_supported: bool = False
    flash_attn_installed: bool = False
    bitsandbytes_installed: bool = False

    @property
    def cuda(self) -> bool:
        return self.cuda_devices > 0


@dataclass(frozen=True)
class Plan:
    """How the model will be loaded."""

    device: str  # cpu | cuda:N
    dtype: str  # bfloat16 | float16 | float32
    attention: str  # flash_attention_2 | sdpa | eager
    quantization: str  # none | int8 | nf4 | int4
    notes: tuple[str, ...] = field(default=())
    kv_cache: str = "bf16"  # bf16 (the model's dtype) | fp8 (the fast path's e4m3 cache)

    @property
    def attention_label(self) -> str:
        """The kernel as shown to users: SDPA on CUDA with its preferred kernels."""
        if self.attention == "sdpa" and self.device.startswith("cuda"):
            return f"sdpa ({'/'.join(SDPA_ORDER[:2])})"
        return self.attention


def probe(device_index: int = 0) -> Capabilities:
    """The facts about this machine. Imports torch; never raises for a missing GPU."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    cc = name = None
    bf16 = False
    if n:
        i = min(device_index, n - 1)
        cc = tuple(torch.cuda.get_device_capability(i))
        name = torch.cuda.get_device_name(i)
        bf16 = bool(torch.cuda.is_bf16_supported())
    return Capabilities(
        cuda_devices=n,
        compute_capability=cc,
        gpu_name=name or "",
        bf16_supported=bf16,
        flash_attn_installed=importlib.util.find_spec("flash_attn") is not None,
        bitsandbytes_installed=importlib.util.find_spec("bitsandbytes") is not None,
    )


def device_index(device: str) -> int:
    return int(device.split(":", 1)[1]) if device.startswith("cuda:") and device[5:].isdigit() else 0


def plan(cfg: EngineConfig, caps: Capabilities) -> Plan:
    """The device, dtype, attention and quantization for ``cfg`` on a machine with ``caps``."""
    notes: list[str] = []
    device = _device(cfg.device, caps)
    gpu = device.startswith("cuda")

    if cfg.dtype not in DTYPES:
        raise EngineConfigError("dtype", f"must be one of {', '.join(DTYPES)}, not {cfg.dtype!r}")
    dtype = cfg.dtype
    if dtype == "auto":
        dtype = ("bfloat16" if caps.bf16_supported else "float16") if gpu else "float32"
    elif dtype == "bfloat16" and gpu and not caps.bf16_supported:
        raise EngineConfigError("dtype", f"bfloat16 is not supported by {caps.gpu_name or 'this GPU'}; use float16")

    if cfg.attention not in ATTENTIONS:
        raise EngineConfigError("attention", f"must be one of {', '.join(ATTENTIONS)}, not {cfg.attention!r}")
    flash_ok, why_not = _flash_attn_possible(device, dtype, caps)
    attention = cfg.attention
    if attention == "auto":
        if flash_ok:
            attention = "flash_attention_2"
        elif gpu:
            attention = "sdpa"
            notes.append(f"flash_attention_2 not used: {why_not}; using PyTorch SDPA")
        else:
            attention = "eager"
    elif attention == "flash_attention_2" and not flash_ok:
        raise EngineConfigError("attention", f"flash_attention_2 cannot run here: {why_not}")

    if cfg.quantization not in QUANTIZATIONS:
        raise EngineConfigError("quantization", f"must be one of {', '.join(QUANTIZATIONS)}, not {cfg.quantization!r}")
    if cfg.quantization == "int4":
        _check_int4(cfg, gpu, dtype)
    elif cfg.quantization != "none":
        if not gpu:
            raise EngineConfigError("quantization", f"{cfg.quantization} needs a CUDA GPU (bitsandbytes); "
                                    "this engine runs on the CPU: set quantization = \"none\"")
        if not caps.bitsandbytes_installed:
            raise EngineConfigError("quantization", f"{cfg.quantization} needs bitsandbytes, which is not installed "
                                    "(pip install 'storytransformer[gpu]')")
    if cfg.kv_cache not in KV_CACHES:
        raise EngineConfigError("kv_cache", f"must be one of {', '.join(KV_CACHES)}, not {cfg.kv_cache!r}")
    if cfg.kv_cache == "fp8" and (not gpu or cfg.fast_path == "off"):
        where = "fast_path is off" if gpu else "this engine runs on the CPU"
        raise EngineConfigError("kv_cache", f"fp8 is the fast path's cache on a CUDA GPU and {where}: "
                                "set kv_cache = \"bf16\"")
    return Plan(device, dtype, attention, cfg.quantization, tuple(notes), cfg.kv_cache)


def _check_int4(cfg: EngineConfig, gpu: bool, dtype: str) -> None:
    """int4 weights are quantised by the fast path from bf16 weights on a CUDA GPU (no bitsandbytes);
    any matrix shape is packed (inputs zero-padded to whole blocks of 128: fastgen.int4)."""
    if not gpu:
        raise EngineConfigError("quantization", "int4 needs the fast path on a CUDA GPU; "
                                "this engine runs on the CPU: set quantization = \"none\"")
    if cfg.fast_path == "off":
        raise EngineConfigError("quantization", "int4 weights run on the fast path only, which fast_path = \"off\" "
                                "switches off: set fast_path = \"auto\" or use int8/nf4")
    if dtype != "bfloat16":
        raise EngineConfigError("quantization", f"int4 is quantised from bfloat16 weights, not {dtype}: "
                                "set dtype = \"auto\" or \"bfloat16\"")


def _device(requested: str, caps: Capabilities) -> str:
    if requested == "auto":
        return "cuda:0" if caps.cuda else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "cuda" or (requested.startswith("cuda:") and requested[5:].isdigit()):
        if not caps.cuda:
            raise EngineConfigError("device", f"{requested!r} requested but this machine has no CUDA GPU "
                                    "(or this torch build has no CUDA); use \"auto\" or \"cpu\"")
        index = device_index(requested)
        if index >= caps.cuda_devices:
            raise EngineConfigError("device", f"{requested!r} requested but only {caps.cuda_devices} CUDA device(s) exist")
        return f"cuda:{index}"
    raise EngineConfigError("device", f"must be auto, cpu, cuda or cuda:N, not {requested!r}")


def _flash_attn_possible(device: str, dtype: str, caps: Capabilities) -> tuple[bool, str]:
    if not device.startswith("cuda"):
        return False, "it needs a CUDA GPU"
    if not caps.flash_attn_installed:
        return False, "the flash-attn package is not installed (pip install 'storytransformer[gpu]')"
    if caps.compute_capability is None or caps.compute_capability < FLASH_ATTN_MIN_CC:
        cc = ".".join(map(str, caps.compute_capability or ())) or "unknown"
        return False, f"{caps.gpu_name or 'this GPU'} has compute capability {cc}; flash-attn 2 needs 8.0 or newer"
    if dtype not in ("bfloat16", "float16"):
        return False, f"it needs bfloat16 or float16 weights, not {dtype}"
    return True, ""


def torch_dtype(name: str):
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def quantization_config(p: Plan):
    """The transformers ``BitsAndBytesConfig`` for the plan, or ``None``."""
    if p.quantization not in BNB_QUANTIZATIONS:
        return None  # none, or int4 (loaded in bf16, quantised by the fast path)
    BitsAndBytesConfig = hf_imports.names("transformers", "BitsAndBytesConfig")

    if p.quantization == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_compute_dtype=torch_dtype(p.dtype), bnb_4bit_use_double_quant=True)
    return BitsAndBytesConfig(load_in_8bit=True)


# SDPA kernels in order of preference on CUDA. Flash first: cuDNN attention is faster on long
# prefills but builds a plan per new shape, which made decoding (a new KV length every token)
# several times slower on an H200 (docs/benchmarks/engine-cuda.md).
SDPA_ORDER = ("flash", "efficient", "cudnn", "math")


def sdpa_preference():
    """A context manager that makes SDPA try its kernels in :data:`SDPA_ORDER` (the math kernel
    stays the fallback for shapes the others cannot run)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    names = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
             "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
    order = [names[n] for n in SDPA_ORDER]
    try:
        return sdpa_kernel(order, set_priority=True)
    except TypeError:  # older torch: no priority order
        return sdpa_kernel(order)

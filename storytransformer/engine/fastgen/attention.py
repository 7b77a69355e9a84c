"""Attention kernels, selectable by name.

Prefill (``n`` new queries over ``L = start + n`` cached positions, causal aligned bottom-right):
  eager           explicit softmax(QK^T)V; memory n * L per head (T^2 without chunking)
  sdpa_flash      torch SDPA restricted to its FlashAttention-2 backend
  sdpa_cudnn      torch SDPA restricted to cuDNN attention
  sdpa_efficient  torch SDPA restricted to the memory-efficient (xFormers) backend
  flash_attn      flash-attn 2's flash_attn_func, when the package is importable
  triton          this project's flash attention in Triton (triton_prefill.py): GQA read in place
  cudnn_split     cuDNN over query segments, each a causal square plus a full rectangle over the keys
                  before it, merged by log-sum-exp (split_attention.py): fastest at long contexts
Decode (one query over the whole static cache, the valid length read on the device: graph-safe):
  matmul          grouped q.K^T and p.V over the full cache, positions past the length masked
  triton          split-K flash-decoding that reads only the filled prefix (see triton_decode.py)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch
from torch.nn import functional as F

from .kv_cache import KVLayer
from .gpu_platform import detect, prefill_unavailable

PREFILL_IMPLS = ("eager", "sdpa_flash", "sdpa_cudnn", "sdpa_efficient", "flash_attn", "triton", "cudnn_split")
DECODE_IMPLS = ("matmul", "triton")

class AttentionProbes:
    """What ``probe_prefill`` found on one device. ``offset_mode[impl]``: how a backend handles a chunk
    that follows cached positions, "lower_right" (a CausalBias, native in flash and efficient) or
    "single_chunk" (it only takes start == 0, so the generator prefills in one chunk). ``gqa_native``:
    the SDPA backends that took enable_gqa=True correctly; the others get the key/value heads repeated
    to every query head (a copy of the cached keys and values per layer and chunk)."""

    def __init__(self, device: str):
        self.device = device
        self.offset_mode: dict[str, str] = {}
        self.gqa_native: set[str] = set()


_PROBES: dict[str, AttentionProbes] = {}
_LATEST: list[AttentionProbes] = []  # the device probed last, for OFFSET_MODE


def _device_key(device) -> str:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


def probes_for(device) -> AttentionProbes:
    """The probe results of ``device`` (one object per device, created empty on first use)."""
    key = _device_key(device)
    if key not in _PROBES:
        _PROBES[key] = AttentionProbes(key)
    return _PROBES[key]


class _LatestOffsetMode(Mapping):
    """``OFFSET_MODE``: the offset modes of the device probed last, as a read-only mapping. Callers that
    probe then read (the engine) see their device's results; code that knows its device reads
    ``probes_for(device).offset_mode``."""

    def _modes(self) -> dict[str, str]:
        return _LATEST[-1].offset_mode if _LATEST else {}

    def __getitem__(self, impl: str) -> str:
        return self._modes()[impl]

    def __iter__(self):
        return iter(self._modes())

    def __len__(self) -> int:
        return len(self._modes())


OFFSET_MODE: Mapping[str, str] = _LatestOffsetMode()


def _sdpa_backend(impl: str):
    from torch.nn.attention import SDPBackend

    return {"sdpa_flash": SDPBackend.FLASH_ATTENTION, "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
            "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION}[impl]


def repeat_kv(x: torch.Tensor, group: int) -> torch.Tensor:
    """[B, Hkv, L, D] -> [B, Hkv * group, L, D]; query head h reads key/value head h // group."""
    if group == 1:
        return x
    B, H, L, D = x.shape
    return x[:, :, None].expand(B, H, group, L, D).reshape(B, H * group, L, D)


def lower_right_mask(n: int, kv_len: int, device) -> torch.Tensor:
    """[n, L] boolean, True where query i (at position L - n + i) may see key j."""
    rows = torch.arange(n, device=device)[:, None] + (kv_len - n)
    return torch.arange(kv_len, device=device)[None, :] <= rows


def eager_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q [B, Hq, n, D], k and v [B, Hkv, L, D] -> [B, Hq, n, D] with explicit [B, Hq, n, L] scores."""
    n, kv_len = q.shape[2], k.shape[2]
    group = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, group), repeat_kv(v, group)
    scores = torch.matmul(q, k.transpose(-1, -2)).float()  # [B, Hq, n, L]
    scores.mul_(1 / math.sqrt(q.shape[-1])).masked_fill_(~lower_right_mask(n, kv_len, q.device), float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    del scores
    return torch.matmul(probs.to(v.dtype), v)


def prefill_attention(impl: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start: int,
                      k_scale: torch.Tensor | None = None, v_scale: torch.Tensor | None = None) -> torch.Tensor:
    """q [B, Hq, n, D] at positions start.., k and v [B, Hkv, start + n, D] -> [B, Hq, n, D]. With an
    8-bit cache, k and v are e4m3 and k_scale, v_scale [B, Hkv, start + n] their scales: the Triton
    kernel reads them directly, eager attention (the reference) dequantises, the others refuse."""
    if k_scale is not None:
        if impl == "triton":
            from .triton_prefill import flash_prefill

            return flash_prefill(q, k, v, k_scale, v_scale)
        if impl != "eager":
            raise ValueError(f"an fp8 KV cache is read by the triton (or eager) prefill attention, not {impl}")
        k, v = KVLayer(k, v, k_scale, v_scale).dequantized(q.dtype)
    if impl == "eager":
        return eager_attention(q, k, v)
    if impl == "triton":
        from .triton_prefill import flash_prefill

        return flash_prefill(q, k, v)
    if impl == "cudnn_split":
        from .split_attention import cudnn_partial, split_prefill
        from .triton_merge import merge

        return split_prefill(q, k, v, cudnn_partial, merge)
    if impl == "flash_attn":
        from flash_attn import flash_attn_func  # bottom-right causal and GQA are native; layout [B, L, H, D]

        out = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=True)
        return out.transpose(1, 2)
    from torch.nn.attention import sdpa_kernel
    from torch.nn.attention.bias import causal_lower_right

    gqa = impl in probes_for(q.device).gqa_native and q.shape[1] != k.shape[1]
    if not gqa:
        group = q.shape[1] // k.shape[1]
        k, v = repeat_kv(k, group), repeat_kv(v, group)
    extra = {"enable_gqa": True} if gqa else {}  # only when used: older CausalBias dispatch lacks it
    with sdpa_kernel([_sdpa_backend(impl)]):
        if start == 0:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, **extra)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(q.shape[2], k.shape[2]),
                                              **extra)


def decode_attention(impl: str, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, length: torch.Tensor,
                     cache, k_scale: torch.Tensor | None = None, v_scale: torch.Tensor | None = None) -> torch.Tensor:
    """q [B, Hq, 1, D], keys and values [B, Hkv, S, D] (the whole cache; e4m3 with scales [B, Hkv, S]
    for an 8-bit cache), ``length`` [1] valid positions on the device -> [B, Hq, 1, D]. No host
    synchronisation: capturable in a CUDA graph."""
    if impl == "triton":
        from .triton_decode import flash_decode

        return flash_decode(q, keys, values, length, k_scale=k_scale, v_scale=v_scale)
    if impl != "matmul":
        raise ValueError(f"unknown decode attention {impl!r}; choose from {', '.join(DECODE_IMPLS)}")
    if k_scale is not None:  # the reference: dequantise the whole cache layer
        keys, values = KVLayer(keys, values, k_scale, v_scale).dequantized(q.dtype)
    B, Hq, _, D = q.shape
    Hkv = keys.shape[1]
    qg = q.reshape(B, Hkv, Hq // Hkv, D)  # the G query heads of each key/value head, as G rows
    scores = torch.matmul(qg, keys.transpose(-1, -2)).float() / math.sqrt(D)  # [B, Hkv, G, S]
    scores = scores.masked_fill(cache.positions >= length, float("-inf"))
    out = torch.matmul(torch.softmax(scores, dim=-1).to(values.dtype), values)  # [B, Hkv, G, D]
    return out.reshape(B, Hq, 1, D)


def probe_prefill(impl: str, device, dtype, n_heads: int, n_kv_heads: int, head_dim: int) -> str | None:
    """Check ``impl`` on this device against eager attention, with and without cached positions before the
    chunk, with native grouped-query attention first for SDPA. Records the result in
    ``probes_for(device)``; returns None when usable, else why not."""
    missing = prefill_unavailable(impl, detect(device))
    if missing:
        return missing
    found = probes_for(device)
    if found in _LATEST:
        _LATEST.remove(found)
    _LATEST.append(found)
    if impl == "flash_attn":
        try:
            from flash_attn import flash_attn_func  # noqa: F401
        except ImportError:
            return "flash-attn is not installed"
    if impl == "triton":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "triton is not installed"
        if torch.device(device).type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
            return "triton kernels need a CUDA device (or TRITON_INTERPRET=1)"
    if impl == "cudnn_split":
        if torch.device(device).type != "cuda":
            return "cuDNN attention needs a CUDA device"
        try:
            import triton  # noqa: F401 - the merge kernel
        except ImportError:
            return "triton is not installed"
    if impl not in PREFILL_IMPLS:
        return f"unknown attention {impl!r}; choose from {', '.join(PREFILL_IMPLS)}"
    if impl.startswith("sdpa_") and n_heads != n_kv_heads:
        found.gqa_native.add(impl)
        if _probe_cases(impl, device, dtype, n_heads, n_kv_heads, head_dim) == (None, "lower_right"):
            found.offset_mode[impl] = "lower_right"
            return None
        found.gqa_native.discard(impl)
    why, mode = _probe_cases(impl, device, dtype, n_heads, n_kv_heads, head_dim)
    if why is None:
        found.offset_mode[impl] = mode
    return why


def _probe_cases(impl: str, device, dtype, n_heads: int, n_kv_heads: int, head_dim: int) -> tuple[str | None, str]:
    """(None or why ``impl`` fails from position 0, "lower_right" or "single_chunk")."""
    gen = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    tol = 1e-4 if dtype == torch.float32 else 5e-2
    mode = "lower_right"
    for start, n in ((0, 128), (128, 64)):
        # the model's layouts: q a transposed projection, k and v slices of a larger static cache
        q = rand(1, n, n_heads, head_dim).transpose(1, 2)
        k, v = (rand(1, n_kv_heads, start + n + 64, head_dim)[:, :, :start + n] for _ in range(2))
        try:
            got = prefill_attention(impl, q, k, v, start).float()
        except Exception as exc:  # noqa: BLE001 - any failure means "not this way"
            if start == 0:
                return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}", mode
            mode = "single_chunk"
            continue
        want = eager_attention(q.float(), k.float(), v.float())
        err = (got - want).abs().max().item()
        if not err <= tol:
            if start == 0:
                return f"differs from eager attention by {err:.3g}", mode
            mode = "single_chunk"
    return None, mode

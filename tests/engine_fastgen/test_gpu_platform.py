"""Kernel selection by platform with the ROCm facts mocked (no AMD GPU has run this code): cuDNN paths
are never chosen on ROCm, the 8-bit cache needs OCP e4m3 in hardware, and each refusal says why."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from storytransformer.engine.fastgen import gpu_platform  # noqa: E402
from storytransformer.engine.fastgen.attention import probe_prefill  # noqa: E402
from storytransformer.engine.fastgen.gpu_platform import GpuPlatform, detect  # noqa: E402


@pytest.fixture
def rocm(monkeypatch):
    """torch as a ROCm build reports itself on an MI300X (gfx942)."""
    monkeypatch.setattr(torch.version, "hip", "6.4.43482", raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device=None: SimpleNamespace(gcnArchName="gfx942:sramecc+:xnack-", name="AMD Instinct MI300X"))
    return detect("cuda")


def test_a_hip_build_is_detected_with_its_architecture(rocm):
    assert rocm == GpuPlatform("rocm", "gfx942", "6.4.43482") and rocm.rocm


def test_the_cpu_is_neither_cuda_nor_rocm():
    assert detect("cpu").kind == "cpu"


def test_cuda_reports_its_capability(monkeypatch):
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    found = detect("cuda")
    assert found == GpuPlatform("cuda", "sm_90", capability=(9, 0)) and not found.rocm


@pytest.mark.parametrize("impl", ["sdpa_cudnn", "cudnn_split"])
def test_cudnn_attention_is_refused_on_rocm_with_the_alternatives(rocm, impl):
    why = gpu_platform.prefill_unavailable(impl, rocm)
    assert "cuDNN" in why and "ROCm" in why and "triton" in why


@pytest.mark.parametrize("impl", ["triton", "sdpa_flash", "sdpa_efficient", "eager"])
def test_triton_and_sdpa_stay_available_on_rocm(rocm, impl):
    assert gpu_platform.prefill_unavailable(impl, rocm) is None


def test_the_probe_refuses_cudnn_on_rocm_before_running_any_kernel(rocm, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("a kernel ran")

    monkeypatch.setattr("storytransformer.engine.fastgen.attention._probe_cases", must_not_run)
    assert "cuDNN" in probe_prefill("cudnn_split", "cuda", torch.bfloat16, 28, 4, 128)


def test_fp8_cache_needs_ocp_e4m3_on_amd(rocm):
    assert "gfx942" in gpu_platform.kv_cache_unavailable("fp8", rocm)
    assert gpu_platform.kv_cache_unavailable("fp8", GpuPlatform("rocm", "gfx950", "7.0")) is None
    assert gpu_platform.kv_cache_unavailable("bf16", rocm) is None


def test_fp8_cache_needs_ada_or_newer_on_nvidia():
    assert "sm_89" in gpu_platform.kv_cache_unavailable("fp8", GpuPlatform("cuda", "sm_80", capability=(8, 0)))
    assert gpu_platform.kv_cache_unavailable("fp8", GpuPlatform("cuda", "sm_90", capability=(9, 0))) is None
    assert gpu_platform.kv_cache_unavailable("fp8", GpuPlatform("cuda", "sm_100", capability=(10, 0))) is None


def test_bitsandbytes_formats_name_the_rocm_build_when_it_is_missing(rocm, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_bnb(name, *args, **kwargs):
        if name == "bitsandbytes":
            raise ImportError("No module named 'bitsandbytes'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bnb)
    assert "ROCm build of bitsandbytes" in gpu_platform.weights_unavailable("nf4", rocm)
    assert gpu_platform.weights_unavailable("int4", rocm) is None

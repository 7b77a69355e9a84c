"""Attention, precision, device and quantization selection, with the machine's facts injected."""

from __future__ import annotations

import pytest

from storytransformer.config import EngineConfig
from storytransformer.engine.contract import EngineConfigError
from storytransformer.engine.hardware import Capabilities, plan

CPU = Capabilities()
H100 = Capabilities(cuda_devices=1, compute_capability=(9, 0), gpu_name="H100", bf16_supported=True)
H100_FA = Capabilities(cuda_devices=1, compute_capability=(9, 0), gpu_name="H100", bf16_supported=True,
                       flash_attn_installed=True, bitsandbytes_installed=True)
T4_FA = Capabilities(cuda_devices=1, compute_capability=(7, 5), gpu_name="T4", bf16_supported=False,
                     flash_attn_installed=True, bitsandbytes_installed=True)


def test_cpu_gets_fp32_and_eager_attention():
    p = plan(EngineConfig(), CPU)
    assert (p.device, p.dtype, p.attention, p.quantization) == ("cpu", "float32", "eager", "none")


def test_gpu_without_flash_attn_gets_bf16_and_sdpa_with_a_note():
    p = plan(EngineConfig(), H100)
    assert (p.device, p.dtype, p.attention) == ("cuda:0", "bfloat16", "sdpa")
    assert p.attention_label == "sdpa (flash/efficient)"
    assert any("flash-attn package is not installed" in n for n in p.notes)


def test_ampere_or_newer_with_flash_attn_gets_flash_attention_2():
    assert plan(EngineConfig(), H100_FA).attention == "flash_attention_2"


def test_pre_ampere_gpu_falls_back_to_sdpa_and_fp16():
    p = plan(EngineConfig(), T4_FA)
    assert (p.dtype, p.attention) == ("float16", "sdpa")
    assert any("compute capability 7.5" in n for n in p.notes)


def test_flash_attn_requested_without_the_package_names_the_setting():
    with pytest.raises(EngineConfigError) as e:
        plan(EngineConfig(attention="flash_attention_2"), H100)
    assert e.value.setting == "attention" and "flash-attn package is not installed" in str(e.value)


def test_flash_attn_requested_on_cpu_is_refused():
    with pytest.raises(EngineConfigError, match="engine.attention: .*needs a CUDA GPU"):
        plan(EngineConfig(attention="flash_attention_2", device="cpu"), H100_FA)


def test_flash_attn_with_fp32_is_refused():
    with pytest.raises(EngineConfigError, match="bfloat16 or float16"):
        plan(EngineConfig(attention="flash_attention_2", dtype="float32"), H100_FA)


@pytest.mark.parametrize("q", ["nf4", "int8"])
def test_quantization_on_cpu_is_refused(q):
    with pytest.raises(EngineConfigError) as e:
        plan(EngineConfig(quantization=q), CPU)
    assert e.value.setting == "quantization" and "needs a CUDA GPU" in str(e.value)


def test_quantization_without_bitsandbytes_is_refused():
    with pytest.raises(EngineConfigError, match="bitsandbytes, which is not installed"):
        plan(EngineConfig(quantization="nf4"), H100)


def test_nf4_on_a_gpu_with_bitsandbytes():
    p = plan(EngineConfig(quantization="nf4"), H100_FA)
    assert (p.quantization, p.dtype) == ("nf4", "bfloat16")


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_requested_without_a_gpu_names_the_device_setting(device):
    with pytest.raises(EngineConfigError, match=r"engine.device: .*no CUDA GPU"):
        plan(EngineConfig(device=device), CPU)


def test_cuda_index_past_the_last_gpu():
    with pytest.raises(EngineConfigError, match="only 1 CUDA device"):
        plan(EngineConfig(device="cuda:3"), H100)


def test_unknown_values_are_named():
    with pytest.raises(EngineConfigError, match="engine.device"):
        plan(EngineConfig(device="tpu"), CPU)
    with pytest.raises(EngineConfigError, match="engine.dtype"):
        plan(EngineConfig(dtype="int4"), CPU)


def test_bf16_on_a_gpu_without_it_is_refused():
    with pytest.raises(EngineConfigError, match="bfloat16 is not supported by T4"):
        plan(EngineConfig(dtype="bfloat16"), T4_FA)


def test_cpu_forced_on_a_gpu_machine():
    p = plan(EngineConfig(device="cpu"), H100_FA)
    assert (p.device, p.dtype, p.attention) == ("cpu", "float32", "eager")

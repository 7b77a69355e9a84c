"""``storytransformer bench gpu``: a clear refusal without CUDA, and a complete tiny run on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storytransformer", "bench", "gpu", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_exits_2_with_a_clear_message():
    r = run_cli("--contexts", "4k")
    assert r.returncode == 2
    assert "CUDA is not available" in r.stderr and "--tiny --device cpu" in r.stderr


def test_full_size_model_on_cpu_is_refused():
    r = run_cli("--device", "cpu")
    assert r.returncode == 2 and "needs --tiny" in r.stderr


def test_bad_context_list_is_a_usage_error():
    r = run_cli("--tiny", "--device", "cpu", "--contexts", "4x")
    assert r.returncode == 2 and "not a positive token count" in r.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    r = run_cli("--tiny", "--device", "cpu", "--contexts", "48,96", "--attn", "sdpa_flash,eager,flash_attn",
                "--decode-tokens", "4", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r


def test_tiny_run_writes_json_with_every_section(tiny_run):
    out, r = tiny_run
    data = json.loads((out / "gpu_tiny.json").read_text())
    assert {"environment", "model", "options", "limits", "unavailable", "prefill", "decode", "notes",
            "complete"} <= set(data)
    assert data["complete"] is True
    assert data["limits"]["matmul_tflops"] > 0 and data["limits"]["copy_gbps"] > 0
    assert {"date", "torch", "transformers", "cuda", "gpu"} <= set(data["environment"])
    assert "flash_attn" in data["unavailable"]
    base = data["transformers_baseline"]  # plain transformers generate() of the same shape, same run
    assert base["context"] == 48 and base["ms_per_token"] > 0 and base["fastgen_kernel"] == "matmul"
    prefill = {(row["attn"], row["context"]): row for row in data["prefill"]}
    assert set(prefill) == {("sdpa_flash", 48), ("eager", 48), ("sdpa_flash", 96), ("eager", 96)}
    for row in prefill.values():
        assert row["status"] == "ok"
        assert {"prefill_s", "tokens_per_s", "tflops", "ratio_to_peak", "peak_memory_bytes", "ttft_warm_s",
                "ttft_cold_s", "flops"} <= set(row)
        assert row["ttft_cold_s"] > row["ttft_warm_s"] > 0
    decode = [row for row in data["decode"] if row["attn"] == "matmul"]
    assert [row["context"] for row in decode] == [48, 96]
    for row in decode:
        assert row["status"] == "ok" and row["cuda_graph"] is False
        assert row["ms_per_token"] > 0 and row["bound_ms"] > 0
        assert row["ratio_to_bound"] == pytest.approx(row["ms_per_token"] / row["bound_ms"])


def test_tiny_run_writes_markdown_and_plots(tiny_run):
    out, r = tiny_run
    md = (out / "gpu_tiny.md").read_text()
    assert "| sdpa_flash | 96 | ok |" in md and "## Decoding" in md and "flash_attn: flash-attn is not installed" in md
    for name in ("gpu_tiny_memory.png", "gpu_tiny_prefill.png", "gpu_tiny_decode.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "prefill sdpa_flash @ 96" in r.stdout  # progress lines as it goes


def test_benchmark_script_runs_from_the_repository_root(tmp_path):
    r = subprocess.run([sys.executable, "benchmarks/gpu_bench.py", "--tiny", "--device", "cpu", "--smoke",
                        "--decode-tokens", "2", "--no-hf-baseline", "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads((tmp_path / "gpu_tiny.json").read_text())
    assert [(row["attn"], row["context"]) for row in data["prefill"]] == [("sdpa_flash", 64)]
    assert "transformers_baseline" not in data
    assert set(data["probes"]) == {"eager", "sdpa_flash", "sdpa_cudnn", "sdpa_efficient", "flash_attn", "triton",
                                   "cudnn_split"}
    assert "CUDA device" in data["probes"]["triton"]  # Triton kernels need CUDA or the interpreter
    assert "CUDA device" in data["probes"]["cudnn_split"]


def test_interpreted_run_compares_stages_modes_and_weight_formats(tmp_path):
    """Under Triton's CPU interpreter the fused stages and the Triton attention run for real, so the
    stage/mode comparison and the bitsandbytes table are filled in."""
    pytest.importorskip("triton")
    pytest.importorskip("bitsandbytes")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    r = subprocess.run([sys.executable, "-m", "storytransformer", "bench", "gpu", "--tiny", "--device", "cpu",
                        "--smoke", "--attn", "triton", "--quant", "int8,nf4", "--decode-tokens", "2",
                        "--no-hf-baseline", "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads((tmp_path / "gpu_tiny.json").read_text())
    assert data["options"]["fused"] is True and data["options"]["prefill_mode"] == "layered"
    prefill = [row for row in data["prefill"] if row["status"] == "ok"]
    assert [(row["attn"], row["mode"], row["fused"]) for row in prefill] == [("triton", "layered", True)]
    variants = [(row["kind"], row["fused"], row.get("mode")) for row in data["variants"]]
    assert variants == [("prefill", False, "chunked"), ("prefill", True, "chunked"), ("prefill", True, "layered"),
                        ("decode", False, None), ("decode", True, None)]
    assert all(row["seconds"] > 0 for row in data["variants"] if row["kind"] == "prefill")
    formats = {row["format"]: row for row in data["quantized"]}
    assert set(formats) == {"fp32", "int8", "nf4"}
    for row in formats.values():
        assert row["status"] == "ok", row
        assert row["tokens_per_s"] > 0 and row["ms_per_token"] > 0
    md = (tmp_path / "gpu_tiny.md").read_text()
    assert "## What each change is worth" in md and "| nf4 | ok" in md


def test_format_cache_and_accuracy_rows_on_the_cpu(tmp_path):
    """The issue-18 measurements without the sweep: weight formats, the 8-bit cache against the model's
    own dtype, accuracy against it; capped runs need CUDA and say so."""
    pytest.importorskip("bitsandbytes")
    r = subprocess.run([sys.executable, "benchmarks/gpu_bench.py", "--tiny", "--device", "cpu", "--no-sweep",
                        "--quant", "nf4", "--kv-contexts", "48", "--accuracy", "2", "--capped", "16",
                        "--decode-tokens", "2", "--no-hf-baseline", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads((tmp_path / "gpu_tiny.json").read_text())
    assert data["prefill"] == [] and data["decode"] == []
    assert [(row["format"], row["status"]) for row in data["quantized"]] == [("fp32", "ok"), ("nf4", "ok")]
    assert all(row["ms_per_token"] > 0 and row["bound_ms"] > 0 for row in data["quantized"])
    kv = {row["kv"]: row for row in data["kv_cache"]}
    assert set(kv) == {"bf16", "fp8"} and all(row["status"] == "ok" for row in kv.values())
    assert kv["fp8"]["cache_bytes"] < kv["bf16"]["cache_bytes"] / 3  # 1 byte and a scale against 4 (fp32 here)
    accuracy = {(row["weights"], row["kv"]): row for row in data["accuracy"]}
    assert set(accuracy) == {("int8", "bf16"), ("nf4", "bf16"), ("int4", "bf16"), ("bf16", "fp8"), ("int4", "fp8")}
    fp8 = accuracy[("bf16", "fp8")]
    assert fp8["status"] == "ok" and fp8["prompts"] == 2 and 0 <= fp8["mean_kl"] < 0.1
    assert 0 <= fp8["identical_share"] <= 1
    # the tiny model's 64 inputs: zero-padded to one 128-block in the packed weights, then measured like the rest
    int4 = accuracy[("int4", "bf16")]
    assert int4["status"] == "ok" and int4["prompts"] == 2 and 0 <= int4["mean_kl"] < 5, int4
    assert any("need CUDA" in note for note in data["notes"])
    md = (tmp_path / "gpu_tiny.md").read_text()
    assert "## 8-bit KV cache against bf16" in md and "## Accuracy against bf16" in md

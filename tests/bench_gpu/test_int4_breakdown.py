"""The int4 bench's per-kernel breakdown of a decoding step: kernels grouped into stages, per step, and the
time between kernels as what the timed step leaves over."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.gpu.int4_bench import stage_of, summarize_kernels  # noqa: E402


def test_kernels_are_named_into_the_stages_of_a_decoding_step():
    assert stage_of("_decode_kernel") == "int4 products"
    assert stage_of("_split_kernel") == "attention slices"
    assert stage_of("_merge_kernel") == "attention merge"
    assert stage_of("_rms_norm_kernel") == "rms norm (+ residual add)"
    assert stage_of("_qkv_rotary_kernel") == "qkv rotary + cache write"
    assert stage_of("_silu_mul_kernel") == "silu_mul"
    assert stage_of("void at::native::vectorized_elementwise_kernel<4, ...>") == "torch elementwise / reductions"
    assert stage_of("something else") == "other"


def test_a_breakdown_is_per_step_and_leaves_the_rest_of_the_step_between_kernels():
    events = [("_decode_kernel", 30.0), ("_decode_kernel", 10.0), ("_merge_kernel", 2.0),
              ("_decode_kernel", 30.0), ("_decode_kernel", 10.0), ("_merge_kernel", 2.0)]
    row = summarize_kernels(events, reps=2, step_ms=0.05)
    assert row["kernels_per_step"] == 3 and row["busy_us_per_step"] == pytest.approx(42.0)
    assert row["between_kernels_us_per_step"] == pytest.approx(8.0)
    first = row["stages"][0]
    assert first["stage"] == "int4 products" and first["kernels_per_step"] == 2
    assert first["us_per_step"] == pytest.approx(40.0) and first["share"] == pytest.approx(0.8)
    assert [k["name"] for k in row["kernels"]] == ["_decode_kernel", "_merge_kernel"]
    untimed = summarize_kernels(events, reps=2, step_ms=None)
    assert "between_kernels_us_per_step" not in untimed and untimed["stages"][1]["share"] == pytest.approx(2 / 42)

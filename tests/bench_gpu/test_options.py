"""Pure helpers: context-size parsing and the split plan of the Triton decode kernel."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.gpu.options import parse_names, parse_sizes


def test_sizes_take_k_and_m_suffixes():
    assert parse_sizes("4k, 16K,1m,300") == [4096, 16384, 1048576, 300]
    assert parse_sizes("") == []


@pytest.mark.parametrize("text", ["4x", "k", "-4k", "0", "1.5k"])
def test_bad_sizes_are_rejected_with_the_item(text):
    with pytest.raises(argparse.ArgumentTypeError, match="not a positive token count"):
        parse_sizes(text)


def test_names_drop_blanks():
    assert parse_names("sdpa_flash, ,eager") == ["sdpa_flash", "eager"]


@pytest.mark.parametrize("capacity", [64, 100, 4608, 131_328, 524_800])
@pytest.mark.parametrize("programs", [1, 4, 8])
def test_split_plan_covers_the_cache_with_whole_blocks(capacity, programs):
    triton_decode = pytest.importorskip("storytransformer.engine.fastgen.triton_decode")
    splits, split_len = triton_decode.plan_splits(capacity, programs, block_n=64)
    assert split_len % 64 == 0
    assert splits * split_len >= capacity > (splits - 1) * split_len  # every slice starts inside the cache
    assert splits * programs <= max(512, programs)


def test_decode_slices_aim_at_two_programs_a_multiprocessor(monkeypatch):
    import types

    import torch

    triton_decode = pytest.importorskip("storytransformer.engine.fastgen.triton_decode")
    monkeypatch.setattr(triton_decode, "_SMS", {})
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: types.SimpleNamespace(multi_processor_count=132))
    assert triton_decode.programs_for(torch.device("cuda", 0)) == 264
    assert triton_decode.programs_for(torch.device("cpu")) == 512
    # the 7.6B shape's 4 key/value heads over a 32,832-position cache: 65 slices of 512 positions
    assert triton_decode.plan_splits(32_832, 4, 64, 264) == (65, 512)

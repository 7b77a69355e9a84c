"""Long causal attention cut into segments (a causal square plus a rectangle over the keys before it)
and merged by log-sum-exp: the same result as one causal attention, with and without cached keys."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from storytransformer.engine.fastgen import split_attention as sa  # noqa: E402
from storytransformer.engine.fastgen.attention import eager_attention, probe_prefill  # noqa: E402

from .test_fused_kernels import interpret  # noqa: E402


@pytest.mark.parametrize("n, segment, spans", [
    (10, 4, [(0, 4), (4, 8), (8, 10)]),
    (8, 8, [(0, 8)]),
    (3, 8, [(0, 3)]),
    (0, 8, []),
])
def test_segments_cover_the_queries_in_order(n, segment, spans):
    assert sa.segments(n, segment) == spans


def test_a_segment_must_hold_a_query():
    with pytest.raises(ValueError, match="segment must be at least 1"):
        sa.segments(5, 0)


@pytest.mark.parametrize("B, n, L, hq, hkv, segment", [
    (1, 40, 40, 8, 2, 16),    # three segments from position 0, the last one short
    (2, 37, 100, 8, 2, 8),    # after 63 cached positions, a batch of two
    (1, 5, 77, 6, 1, 3),      # one key/value head for six query heads
    (1, 64, 64, 4, 4, 64),    # one segment: a single causal square
    (1, 1, 33, 8, 2, 4),      # one query after a long prefix (a decoding-sized request)
])
def test_split_prefill_equals_one_causal_attention(B, n, L, hq, hkv, segment):
    g = torch.Generator().manual_seed(n * L)
    q = torch.randn(B, n, hq, 16, generator=g).transpose(1, 2)  # the projection's transposed layout
    k, v = (torch.randn(B, hkv, L + 5, 16, generator=g)[:, :, :L] for _ in range(2))  # cache slices
    got = sa.split_prefill(q, k, v, sa.reference_partial, sa.merge_reference, segment)
    want = eager_attention(q, k, v)
    assert got.shape == want.shape and (got - want).abs().max() < 1e-5
    assert got.transpose(1, 2).is_contiguous()  # [B, n, Hq, D] underneath: the output projection reads it as is


def test_the_partial_log_sum_exp_is_that_of_the_scaled_scores():
    g = torch.Generator().manual_seed(1)
    q, k, v = torch.randn(1, 2, 3, 8, generator=g), torch.randn(1, 2, 5, 8, generator=g), torch.randn(1, 2, 5, 8, generator=g)
    _, lse = sa.reference_partial(q, k, v, False)
    want = torch.logsumexp(q @ k.transpose(-1, -2) / 8 ** 0.5, dim=-1)
    assert (lse - want).abs().max() < 1e-6


def test_more_queries_than_keys_is_refused():
    q, k = torch.zeros(1, 2, 6, 8), torch.zeros(1, 2, 4, 8)
    with pytest.raises(ValueError, match="6 queries but only 4 key positions"):
        sa.split_prefill(q, k, k, sa.reference_partial, sa.merge_reference)


def test_cudnn_split_names_what_it_needs_on_a_cpu():
    assert "CUDA" in probe_prefill("cudnn_split", "cpu", torch.float32, 8, 2, 16)


def test_triton_merge_matches_the_reference_merge():
    interpret("""
        import torch
        from storytransformer.engine.fastgen import split_attention as sa
        from storytransformer.engine.fastgen.triton_merge import merge
        g = torch.Generator().manual_seed(0)
        B, H, m, D = 2, 3, 70, 16
        o1 = torch.randn(B, m, H, D, generator=g).transpose(1, 2)   # cuDNN-like strided outputs
        o2 = torch.randn(B, H, m, D, generator=g)
        l1 = torch.randn(B, H, m, 1, generator=g) * 5               # cuDNN's [B, H, m, 1] statistics
        l2 = torch.randn(B, H, m, generator=g) * 5
        got = torch.empty(B, m, H, D).transpose(1, 2)
        want = torch.empty(B, H, m, D)
        merge(o1, l1, o2, l2, got)
        sa.merge_reference(o1, l1, o2, l2, want)
        assert (got - want).abs().max() < 1e-5, (got - want).abs().max()
        # whole attentions through the Triton merge, after a cached prefix
        q = torch.randn(1, 21, 4, 16, generator=g).transpose(1, 2)
        k, v = (torch.randn(1, 2, 50, 16, generator=g) for _ in range(2))
        from storytransformer.engine.fastgen.attention import eager_attention
        out = sa.split_prefill(q, k, v, sa.reference_partial, merge, 8)
        assert (out - eager_attention(q, k, v)).abs().max() < 1e-5
        print("ok")
    """)

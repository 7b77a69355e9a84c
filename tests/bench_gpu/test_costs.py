"""FLOP and byte counting, checked against sums done by hand on a tiny shape."""

from __future__ import annotations

import pytest

from benchmarks.gpu import costs
from storytransformer.engine.fastgen.config import ModelConfig

# 1 layer, dim 4, intermediate 6, 2 query heads and 1 KV head of 2, vocabulary 10.
SMALL = ModelConfig(n_layers=1, dim=4, intermediate=6, n_heads=2, n_kv_heads=1, head_dim=2, vocab=10)


def test_matmul_params_per_layer_counts_q_k_v_o_and_three_mlp_matrices():
    # q 4x4=16, k 4x2=8, v 4x2=8, o 4x4=16, gate+up+down 3*4*6=72
    assert costs.matmul_params_per_layer(SMALL) == 16 + 8 + 8 + 16 + 72


def test_param_count_adds_embeddings_bias_norms_and_head():
    # embeddings 40, layer 120 + qkv bias 8 + two norms 8, final norm 4, output head 40
    assert costs.param_count(SMALL) == 40 + 136 + 4 + 40
    assert costs.param_count(ModelConfig(**{**SMALL.__dict__, "qkv_bias": False})) == 40 + 128 + 4 + 40


def test_qwen_shape_has_its_published_size():
    assert costs.param_count(ModelConfig.qwen25_7b_1m()) == 7_615_616_512


@pytest.mark.parametrize(("n_new", "start", "pairs"), [(1, 0, 1), (3, 0, 6), (4, 0, 10), (2, 3, 2 * 3 + 3), (1, 9, 10)])
def test_causal_pairs(n_new, start, pairs):
    # 3 new tokens alone see 1 + 2 + 3 keys; 2 new after 3 cached see 4 + 5
    assert costs.causal_pairs(n_new, start) == pairs


def test_prefill_flops_by_hand():
    # 3 tokens: linear 2*3*120 = 720, head 2*4*10 = 80, attention 4*head_dim 2*heads 2*layers 1*pairs 6 = 96
    assert costs.prefill_flops(SMALL, 3) == 720 + 80 + 96
    # 2 tokens after 3 cached: linear 480, head 80, attention 16 * 9 pairs = 144
    assert costs.prefill_flops(SMALL, 2, start=3) == 480 + 80 + 144


def test_causal_attention_is_about_half_of_full_attention():
    cfg = ModelConfig.qwen25_7b_1m()
    n = 131072
    linear_and_head = 2 * n * cfg.n_layers * costs.matmul_params_per_layer(cfg) + 2 * cfg.dim * cfg.vocab
    full = 4 * n * n * cfg.head_dim * cfg.n_heads * cfg.n_layers
    assert costs.prefill_flops(cfg, n) - linear_and_head == pytest.approx(full / 2, rel=1e-4)


def test_kv_and_decode_bytes_by_hand():
    # per position: keys + values, 1 layer, 1 KV head of 2, 2 bytes = 8
    assert costs.kv_bytes_per_token(SMALL) == 8
    # weights 220 params * 2 bytes = 440, minus 9 unread embedding rows of 4 * 2 bytes = 72;
    # KV read for 5 cached + the new position = 48, plus its write 8
    assert costs.decode_bytes(SMALL, 5) == 440 - 72 + 48 + 8


def test_eager_attention_memory_grows_with_the_product_of_lengths():
    one = costs.eager_attention_bytes(SMALL, 10, 100)
    assert costs.eager_attention_bytes(SMALL, 20, 200) - costs.repeated_kv_bytes(SMALL, 200) == \
        4 * (one - costs.repeated_kv_bytes(SMALL, 100))

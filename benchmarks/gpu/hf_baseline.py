"""The reference point: plain transformers greedy decoding (dynamic cache, SDPA) of the same shape,
with random weights, in the same run. This is what the fast path is measured against."""

from __future__ import annotations

import time

import torch

from storytransformer.engine.fastgen.config import ModelConfig


def transformers_decode(cfg: ModelConfig, device: torch.device, dtype: torch.dtype, context: int,
                        new_tokens: int = 16) -> dict:
    """ms/token of ``model.generate`` after a ``context``-token prompt: (time for 1 + n tokens - time for 1) / n."""
    import transformers
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=cfg.vocab, hidden_size=cfg.dim, intermediate_size=cfg.intermediate,
                         num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                         num_key_value_heads=cfg.n_kv_heads, rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta,
                         max_position_embeddings=context + new_tokens + 64, tie_word_embeddings=False)
    config._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in its dtype on its device: no full-precision copy first
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(previous)
    prompt = torch.randint(cfg.vocab, (1, context), generator=torch.Generator().manual_seed(1)).to(device)

    def generate(n: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n, min_new_tokens=n,
                           do_sample=False, pad_token_id=0, eos_token_id=None)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    try:
        generate(2)  # warm-up
        first = generate(1)
        both = generate(1 + new_tokens)
    finally:
        del model
    return {"context": context, "new_tokens": new_tokens, "transformers": transformers.__version__,
            "attn": "sdpa", "cache": "dynamic", "prefill_s": first,
            "ms_per_token": max(both - first, 0.0) / new_tokens * 1e3}

"""Measure the local engine's prompt (prefill) and generation (decode) rates on this machine."""

from __future__ import annotations

import time

PROMPT_TOKENS = 256
DECODE_TOKENS = 32


def measure(config, repeats: int = 2) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s) of the configured local model, best of ``repeats``."""
    import torch

    from ..engine.local import LocalEngine

    engine = LocalEngine(config)
    engine.load()
    model, tok = engine.model, engine.tokenizer
    device = next(model.parameters()).device
    base = tok("As a user, I want to see my past orders, so that I can order again. ", add_special_tokens=False)["input_ids"]
    ids = (base * (PROMPT_TOKENS // len(base) + 1))[:PROMPT_TOKENS]
    x = torch.tensor([ids], device=device)
    prefill = decode = 0.0
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            t_prefill = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=DECODE_TOKENS,
                                 min_new_tokens=DECODE_TOKENS, do_sample=False, pad_token_id=tok.pad_token_id)
            t_all = time.perf_counter() - t0
            new = out.shape[1] - x.shape[1]
            prefill = max(prefill, PROMPT_TOKENS / t_prefill)
            decode = max(decode, max(new - 1, 1) / max(t_all - t_prefill, 1e-6))
    engine.unload()
    return round(prefill, 1), round(decode, 1)

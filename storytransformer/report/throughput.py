"""Measure the configured engine's prompt (prefill) and generation (decode) rates on this machine.

It times the engine's own calls (:meth:`score` and :meth:`generate`, the ones proposals make),
so the figure includes what the engine adds to the raw model: the fast path when it is on, the
chat template, the stop checks, the remote server's round trips.
"""

from __future__ import annotations

import time

PROMPT_TOKENS = 256
DECODE_TOKENS = 32
STORY = "As a user, I want to see my past orders, so that I can order again. "
LONG_ANSWER = [{"role": "user", "content": "Count from 1 to 1000, one number a line."}]


def measure(config, repeats: int = 2, engine=None) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s) of the engine ``config`` asks for, best of ``repeats``.

    Prefill: scoring a text of :data:`PROMPT_TOKENS` tokens (one forward pass over them). Decode:
    a :data:`DECODE_TOKENS`-token answer, less the time its prompt takes to prefill. ``engine``: an
    engine already made (and loaded) to measure instead; it is left loaded."""
    from ..engine import create_engine

    own = engine is None
    engine = engine or create_engine(config)
    engine.load()
    try:
        per_story = max(1, engine.count_tokens(STORY))
        prompt = STORY * (PROMPT_TOKENS // per_story + 1)
        n_prompt = engine.count_tokens(prompt)
        n_answer_prompt = engine.count_tokens(engine.render(LONG_ANSWER))
        engine.score([prompt])  # warm-up
        engine.generate(LONG_ANSWER, max_new_tokens=2, stop=())
        prefill = decode = 0.0
        for _ in range(repeats):
            t0 = time.perf_counter()
            engine.score([prompt])
            rate = n_prompt / max(time.perf_counter() - t0, 1e-6)
            prefill = max(prefill, rate)
            t0 = time.perf_counter()
            text = engine.generate(LONG_ANSWER, max_new_tokens=DECODE_TOKENS, stop=())
            t_all = time.perf_counter() - t0
            new = engine.count_tokens(text)
            decode = max(decode, max(new - 1, 1) / max(t_all - n_answer_prompt / rate, 1e-6))
    finally:
        if own:
            engine.unload()
    return round(prefill, 1), round(decode, 1)

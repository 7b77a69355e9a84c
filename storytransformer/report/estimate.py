"""How big a backlog is, and what one pass of a model over it costs.

One pass = one rewrite request per story: the engine's prompt (system message and
examples, ``prompt_tokens`` per story) plus the story as input, and an answer about
``output_ratio`` times as long as the story as output. Time on the local engine is
input / prefill throughput + output / decode throughput (one request at a time,
no batching: the pessimistic case on a laptop). Hosted cost is input and output
tokens times each model's price per million. The backlog "fits in one prompt" when
all stories plus one prompt's overhead fit in the model's context window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .settings import EstimateSettings


@dataclass(frozen=True)
class Size:
    files: int
    stories: int
    words: int
    tokens: int  # story text only, no special tokens


def words_of(text: str) -> int:
    return len(text.split())


def pass_tokens(size: Size, prompt_tokens: int, output_ratio: float) -> tuple[int, int]:
    """(input, output) tokens of one pass: every story sent once with the prompt around it."""
    return size.tokens + size.stories * prompt_tokens, int(round(size.tokens * output_ratio))


def local_seconds(input_tokens: int, output_tokens: int, prefill_per_s: float, decode_per_s: float) -> float:
    return input_tokens / prefill_per_s + output_tokens / decode_per_s


def hosted_cost(input_tokens: int, output_tokens: int, input_per_million: float, output_per_million: float) -> float:
    return input_tokens / 1e6 * input_per_million + output_tokens / 1e6 * output_per_million


def prompts_needed(backlog_tokens: int, prompt_tokens: int, context_window: int) -> int | None:
    """How many prompts the whole backlog needs at most per prompt; ``None`` when not even the
    prompt's own overhead fits the window."""
    room = context_window - prompt_tokens
    if room <= 0:
        return None
    return max(1, math.ceil(backlog_tokens / room))


def estimate(size: Size, prompt_tokens: int, settings: EstimateSettings, *, tokenizer: str = "",
             local_model: str = "", local_context: int | None = None, throughput_source: str = "configured",
             per_file: Sequence[dict] = ()) -> dict:
    """The whole estimate as plain data (what ``estimate --format json`` prints and the report shows)."""
    tin, tout = pass_tokens(size, prompt_tokens, settings.output_ratio)
    secs = local_seconds(tin, tout, settings.prefill_tokens_per_s, settings.decode_tokens_per_s)
    hosted = []
    for m in settings.hosted:
        need = prompts_needed(size.tokens, prompt_tokens, m.context_window)
        hosted.append({"model": m.name, "input_per_million": m.input_per_million,
                       "output_per_million": m.output_per_million, "context_window": m.context_window,
                       "cost_usd": round(hosted_cost(tin, tout, m.input_per_million, m.output_per_million), 6),
                       "fits_in_one_prompt": need == 1, "prompts_needed": need})
    local_need = prompts_needed(size.tokens, prompt_tokens, local_context) if local_context else None
    return {
        "size": {"files": size.files, "stories": size.stories, "words": size.words, "tokens": size.tokens,
                 "tokenizer": tokenizer},
        "pass": {"input_tokens": tin, "output_tokens": tout, "prompt_tokens_per_story": prompt_tokens,
                 "output_ratio": settings.output_ratio},
        "local": {"model": local_model, "seconds": round(secs, 1),
                  "prefill_tokens_per_s": settings.prefill_tokens_per_s,
                  "decode_tokens_per_s": settings.decode_tokens_per_s, "throughput": throughput_source,
                  "context_window": local_context,
                  "fits_in_one_prompt": None if local_context is None else local_need == 1,
                  "prompts_needed": local_need},
        "hosted": hosted,
        "files": list(per_file),
        "assumptions": ASSUMPTIONS,
    }


ASSUMPTIONS = ("one pass = one rewrite request per story (prompt + story in, a story-sized answer out); "
               "local time = input tokens / prefill rate + output tokens / decode rate, one request at a time; "
               "hosted cost = tokens x list price per million; fits in one prompt = all stories + one prompt's "
               "overhead within the context window")


def money(usd: float) -> str:
    """``$1,234.50``; small amounts keep their first significant cents (``$0.0042``)."""
    return f"${usd:,.2f}" if usd >= 1 or usd == 0 else f"${usd:.4f}"


def duration(seconds: float) -> str:
    """``3 h 05 min``, ``4 min 10 s``, ``12 s``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"


def estimate_backlog(workspace, config, settings: EstimateSettings | None = None, *, counter=None,
                     progress=None, measured: tuple[float, float] | None = None) -> dict:
    """The estimate for every story of ``workspace``, counted with the configured model's tokenizer
    (``counter``: a :class:`.tokens.TokenCounter`, loaded when not given). ``measured``: (prefill,
    decode) tokens/s measured on this machine, replacing the configured throughput."""
    from dataclasses import replace

    from ..output import display_path
    from .tokens import TokenCounter

    settings = settings or EstimateSettings()
    counter = counter or TokenCounter.for_config(config)
    files = []
    total_words = total_tokens = n = 0
    items = sorted(workspace.files.items())
    for path, src in items:
        texts = [s.text for s in src.stories]
        counts = counter.count_many(texts)
        w = sum(words_of(t) for t in texts)
        files.append({"file": display_path(path), "stories": len(texts), "words": w, "tokens": sum(counts)})
        total_words += w
        total_tokens += sum(counts)
        n += len(texts)
        if progress:
            progress()
    counter.save()
    source = "configured"
    if measured:
        settings = replace(settings, prefill_tokens_per_s=measured[0], decode_tokens_per_s=measured[1])
        source = "measured"
    prompt_tokens = settings.prompt_overhead_tokens or counter.prompt_overhead()
    size = Size(len(items), n, total_words, total_tokens)
    return estimate(size, prompt_tokens, settings, tokenizer=counter.label, local_model=counter.model_label,
                    local_context=counter.context_window, throughput_source=source, per_file=files)

"""Issue 18's measurements: weight formats (bf16, bitsandbytes int8 / NF4, the project's int4), the
8-bit KV cache against bf16, the whole backlog resident under a 24 GB or 16 GB cap, and accuracy of
every format against bf16.

Each function takes the benchmark's context (device, model shape, a ``log`` and a ``save`` callback)
and appends rows to a list of the result, saving after each row, so a run cut short keeps them.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence

import torch

from storytransformer.engine.fastgen.kv_cache import FP8, StaticKVCache
from storytransformer.engine.fastgen.config import ModelConfig
from storytransformer.engine.fastgen.generate import Generator
from storytransformer.engine.fastgen.model import Transformer, build_model

from . import costs

GB = 1e9
GIB = 2 ** 30
WEIGHT_FORMATS = ("bf16", "int8", "nf4", "int4")


def int4_missing() -> str | None:
    """Why the project's int4 format cannot be loaded here, or None."""
    try:
        from storytransformer.engine.fastgen.int4 import quantize_linears_int4  # noqa: F401
    except ImportError as exc:
        return f"storytransformer.engine.fastgen.int4 is not importable ({exc})"
    return None


def four_bit_format() -> str:
    """The 4-bit weights to use: the project's int4 when it is importable, else bitsandbytes NF4."""
    return "nf4" if int4_missing() else "int4"


def quantize_weights(model: Transformer, fmt: str) -> None:
    """Every matrix of the decoder layers in ``fmt`` (bf16: unchanged); the output head stays bf16, except
    for "int4_head" (int4 with the head in int4 too)."""
    if fmt == "bf16" or fmt == "fp32":
        return
    if fmt in ("int4", "int4_head"):
        from storytransformer.engine.fastgen.int4 import quantize_linears_int4

        quantize_linears_int4(model, group_size=128, head=fmt == "int4_head")
        return
    import logging
    import warnings

    from storytransformer.engine.fastgen.quantize import quantize_linears

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_linears(model, fmt)


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of every parameter and buffer (packed codes and their scales included)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    return total


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def cleanup(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def decode_ms(generator: Generator, first: torch.Tensor, steps: int, device: torch.device) -> tuple[float, str | None]:
    """ms/token of greedy decoding (graph-replayed where capture works); the cache is left as it was."""
    start, graph_error = generator.cache.length, None
    try:
        generator.decode(first, 2)  # capture (on CUDA) and warm up
    except Exception as exc:  # noqa: BLE001 - fall back to op-by-op decoding
        graph_error = error_text(exc)
        generator.release()
        generator.use_graph = False
        generator.truncate(start)
        generator.decode(first, 2)
    generator.truncate(start)
    ms = timed(lambda: generator.decode(first, steps), device) / steps * 1e3
    generator.truncate(start)
    return ms, graph_error


# ---- weight formats and the 8-bit cache at a few contexts --------------------------------------------
def measure_formats(ctx, formats: Sequence[str], contexts: Sequence[int], kv: str = "bf16") -> None:
    """For each weight format: build the 7.6B shape on the GPU, quantise, then at each context prefill
    and decode (graph-replayed); rows in ``ctx.result['quantized']`` with the bytes-read bound."""
    device, cfg = ctx.device, ctx.cfg
    for fmt in formats:
        model = None
        try:
            if fmt == "int4" and int4_missing():
                raise RuntimeError(int4_missing())
            model = build_model(cfg, device, ctx.dtype, fused=ctx.fused)
            quantize_weights(model, fmt)
            cleanup(device)
            weights = model_bytes(model)
            for context in contexts:
                row = {"format": fmt, "kv": kv, "context": context}
                try:
                    row.update(_prefill_and_decode(ctx, model, context, kv))
                    row["weights_bytes"] = weights
                    moved = weights - (cfg.vocab - 1) * cfg.dim * 2 + _kv_read(cfg, context, kv)
                    row["bound_ms"] = moved / (ctx.result["limits"]["copy_gbps"] * GB) * 1e3
                    row["ratio_to_bound"] = row["ms_per_token"] / row["bound_ms"]
                    row["status"] = "ok"
                except Exception as exc:  # noqa: BLE001 - one failing format must not end the run
                    row.update(status="error", reason=error_text(exc))
                ctx.result["quantized"].append(row)
                ctx.log(f"weights {fmt} kv {kv} @ {context}: {row.get('status')} "
                        f"{row.get('ms_per_token', 0):.2f} ms/token, {row.get('tokens_per_s', 0):,.0f} tok/s prefill, "
                        f"{weights / GB:.2f} GB {row.get('reason', '')}")
                ctx.save()
        except Exception as exc:  # noqa: BLE001
            ctx.result["quantized"].append({"format": fmt, "kv": kv, "status": "error", "reason": error_text(exc)})
            ctx.log(f"weights {fmt}: error: {exc}")
            ctx.save()
        finally:
            del model
            cleanup(device)


def measure_kv_cache(ctx, model: Transformer, contexts: Sequence[int]) -> None:
    """bf16 weights, bf16 against fp8 cache at each context: prefill and graph-replayed decode ms/token."""
    for context in contexts:
        for kv in ("bf16", "fp8"):
            row = {"kv": kv, "context": context, "weights": "bf16"}
            try:
                row.update(_prefill_and_decode(ctx, model, context, kv))
                moved = costs.decode_bytes(ctx.cfg, context) - costs.kv_bytes_per_token(ctx.cfg) * (context + 2) \
                    + _kv_read(ctx.cfg, context, kv)
                row["bound_ms"] = moved / (ctx.result["limits"]["copy_gbps"] * GB) * 1e3
                row["ratio_to_bound"] = row["ms_per_token"] / row["bound_ms"]
                row["status"] = "ok"
            except Exception as exc:  # noqa: BLE001
                row.update(status="error", reason=error_text(exc))
            ctx.result["kv_cache"].append(row)
            ctx.log(f"kv {kv} @ {context}: {row['status']} {row.get('ms_per_token', 0):.2f} ms/token "
                    f"(bound {row.get('bound_ms', 0):.2f}) {row.get('reason', '')}")
            ctx.save()
            cleanup(ctx.device)


def check_kv(kv: str, device: torch.device) -> None:
    """A clear error where this platform has no kernel for the cache format (an fp8 cache on MI300, say)."""
    from storytransformer.engine.fastgen.gpu_platform import detect, kv_cache_unavailable

    why = kv_cache_unavailable(kv, detect(device))
    if why:
        raise RuntimeError(why)


def _kv_read(cfg: ModelConfig, context: int, kv: str) -> int:
    """Cache bytes a decoding step reads (and writes) after ``context`` positions."""
    return StaticKVCache.bytes_per_token(cfg, 2, fp8=kv == "fp8") * (context + 2)


def _prefill_and_decode(ctx, model: Transformer, context: int, kv: str) -> dict:
    device, cfg = ctx.device, ctx.cfg
    check_kv(kv, device)
    capacity = -(-(context + ctx.decode_tokens + 16) // 256) * 256
    cache = StaticKVCache(cfg, capacity, device=device, dtype=ctx.dtype, kv_dtype=FP8 if kv == "fp8" else None)
    tokens = torch.randint(cfg.vocab, (1, context), generator=torch.Generator().manual_seed(1)).to(device)
    generator = Generator(model, cache, ctx.prefill_attn, ctx.decode_attn, chunk=min(ctx.chunk, context),
                          cuda_graph=device.type == "cuda", layered=ctx.layered)
    try:
        generator.prefill(tokens[:, :min(context, 2048)], start=0)  # warm-up: kernel compilation
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        holder = {}
        seconds = timed(lambda: holder.update(t=generator.prefill(tokens, start=0)), device)
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        ms, graph_error = decode_ms(generator, holder["t"], ctx.decode_tokens, device)
        return {"prefill_s": seconds, "tokens_per_s": context / seconds, "ms_per_token": ms,
                "cuda_graph": graph_error is None, "graph_error": graph_error, "cache_bytes": cache.nbytes,
                "peak_memory_bytes": peak}
    finally:
        generator.release()
        del generator, cache


# ---- the whole backlog resident under a memory cap ---------------------------------------------------
def measure_capped(ctx, cap_gb: float, weights: str, kv: str = "fp8", max_context: int | None = None,
                   chunk: int = 4096, suffix: int = 256) -> None:
    """With the process capped at ``cap_gb`` GiB (torch.cuda.set_per_process_memory_fraction): the
    largest cache that fits beside the weights and one chunk's activations, filled up to ``max_context``
    (token-major prefill, Triton attention reading the cached prefix), the warm first token of a
    ``suffix``-token request on top, and decode ms/token after it."""
    cfg = ctx.cfg
    device = ctx.device if ctx.device.index is not None else torch.device("cuda", torch.cuda.current_device())
    row = {"cap_gb": cap_gb, "weights": weights, "kv": kv}
    model = cache = generator = None
    total = torch.cuda.get_device_properties(device).total_memory
    try:
        check_kv(kv, device)
        model = build_model(cfg, device, ctx.dtype, fused=ctx.fused)
        quantize_weights(model, weights)  # before the cap: a loader would quantise layer by layer
        cleanup(device)
        cap = cap_gb * GIB
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total), device)
        torch.cuda.reset_peak_memory_stats(device)
        used = torch.cuda.memory_allocated(device)
        reserve = costs.prefill_activation_bytes(cfg, chunk, 0) + GIB  # one chunk, a dequantised matrix, slack
        per_token = StaticKVCache.bytes_per_token(cfg, 2, fp8=kv == "fp8") + 4 * cfg.head_dim + 8  # + rotary, positions
        capacity = int((cap - used - reserve) // per_token) // 1024 * 1024
        context = capacity - 1024  # room for the request and the decoded tokens
        if max_context:
            context = min(context, max_context)
        row.update(weights_bytes=model_bytes(model), capacity_tokens=capacity, context=context)
        if context <= 0:
            raise RuntimeError(f"the weights ({used / GB:.1f} GB) leave no room for a cache under {cap_gb} GiB")
        cache = StaticKVCache(cfg, capacity, device=device, dtype=ctx.dtype, kv_dtype=FP8 if kv == "fp8" else None)
        row["cache_bytes"] = cache.nbytes
        generator = Generator(model, cache, "triton", "triton", chunk=chunk, cuda_graph=True, layered=False)
        gen = torch.Generator().manual_seed(context)
        tokens = torch.randint(cfg.vocab, (1, context + suffix), generator=gen).to(device)
        generator.prefill(tokens[:, :2 * chunk], start=0)  # compile the kernels
        ctx.log(f"capped {cap_gb} GiB: {weights} weights {used / GB:.2f} GB, cache of {capacity:,} tokens "
                f"({cache.nbytes / GB:.1f} GB), prefilling {context:,}")
        holder = {}
        row["prefill_s"] = timed(lambda: holder.update(t=generator.prefill(tokens[:, :context], start=0)), device)
        times = []
        for _ in range(3):
            generator.truncate(context)
            times.append(timed(lambda: holder.update(t=generator.prefill(tokens[:, context:context + suffix])),
                               device))
        row["warm_ttft_ms"] = min(times[1:]) * 1e3
        ms, graph_error = decode_ms(generator, holder["t"], ctx.decode_tokens, device)
        row.update(ms_per_token=ms, cuda_graph=graph_error is None, graph_error=graph_error,
                   peak_memory_bytes=torch.cuda.max_memory_allocated(device), status="ok")
    except torch.cuda.OutOfMemoryError as exc:
        row.update(status="oom", reason=str(exc).splitlines()[0][:200],
                   peak_memory_bytes=torch.cuda.max_memory_allocated(device))
    except Exception as exc:  # noqa: BLE001
        row.update(status="error", reason=error_text(exc))
    finally:
        if generator is not None:
            generator.release()
        del model, cache, generator
        cleanup(device)
        torch.cuda.set_per_process_memory_fraction(1.0, device)
    ctx.result["capped"].append(row)
    ctx.log(f"capped {cap_gb} GiB: {row}")
    ctx.save()


# ---- accuracy against bf16 --------------------------------------------------------------------------
ACCURACY_FORMATS = (("int8", "bf16"), ("nf4", "bf16"), ("int4", "bf16"), ("bf16", "fp8"), ("int4", "fp8"))


def measure_accuracy(ctx, model_name: str, make_model: Callable[[], Transformer], prompts: Sequence[Sequence[int]],
                     formats: Sequence[tuple[str, str]] = ACCURACY_FORMATS, new_tokens: int = 64,
                     prefill_attn: str | None = None, decode_attn: str | None = None) -> None:
    """For each (weights, kv) format against bf16 weights with a bf16 cache: the mean KL divergence
    KL(bf16 || format) of the next-token distributions at every prompt position, and the share of
    prompts whose ``new_tokens``-token greedy continuation is identical."""
    device = ctx.device
    prefill_attn, decode_attn = prefill_attn or ctx.prefill_attn, decode_attn or ctx.decode_attn
    reference = make_model()

    def run(model, prompt, kv):
        capacity = len(prompt) + new_tokens + 16
        cache = StaticKVCache(model.cfg, capacity, device=device, dtype=ctx.dtype,
                              kv_dtype=FP8 if kv == "fp8" else None)
        ids = torch.tensor([list(prompt)], device=device)
        logits = model.prefill(ids, 0, cache, prefill_attn, all_logits=True)[0]  # [n, V]
        cache.length = len(prompt)
        generator = Generator(model, cache, prefill_attn, decode_attn, cuda_graph=device.type == "cuda")
        first = logits[-1].argmax().view(1, 1)
        try:
            rest = generator.decode(first, new_tokens - 1)
        except Exception:  # noqa: BLE001 - a format whose kernels cannot be captured: op by op
            generator.release()
            generator.use_graph = False
            generator.truncate(len(prompt))
            rest = generator.decode(first, new_tokens - 1)
        finally:
            generator.release()
        tokens = torch.cat([first, rest], dim=1)[0]
        return torch.log_softmax(logits.float(), dim=-1), tokens.tolist()

    base = [run(reference, p, "bf16") for p in prompts]
    for weights, kv in formats:
        row = {"model": model_name, "weights": weights, "kv": kv, "prompts": len(prompts), "new_tokens": new_tokens}
        model = None
        try:
            if weights in ("int4", "int4_head") and int4_missing():
                raise RuntimeError(int4_missing())
            if weights == "bf16":
                model = reference
            else:
                model = make_model()
                quantize_weights(model, weights)
            kls, same, positions = [], 0, 0
            for prompt, (ref_logp, ref_tokens) in zip(prompts, base):
                logp, tokens = run(model, prompt, kv)
                kl = (ref_logp.exp() * (ref_logp - logp)).sum(-1)  # [n]
                kls.append(float(kl.sum()))
                positions += kl.shape[0]
                same += tokens == ref_tokens
            row.update(mean_kl=sum(kls) / positions, identical_share=same / len(prompts), positions=positions,
                       status="ok")
        except Exception as exc:  # noqa: BLE001
            row.update(status="error", reason=error_text(exc))
        finally:
            if model is not reference:
                del model
            cleanup(device)
        ctx.result["accuracy"].append(row)
        ctx.log(f"accuracy {model_name} {weights}+{kv}: {row}")
        ctx.save()
    del reference, base
    cleanup(device)

"""The engine's fast path against its transformers path, with the packaged model and a long backlog
prompt (issue 8: prefix cache and fast generation in the engine).

Both engines load the same weights on the same device. Each answers two requests that share a
backlog of about ``--backlog-tokens`` tokens and differ in the question: the first is cold, the
second finds the backlog in the fast path's cache. Reported per path: time to the first token of
each request, decode ms/token (up to 33 tokens against 1 after a short prompt, over the tokens
actually produced), and whether the two paths give the same 33-token answer to the second request.

    python benchmarks/fast_path_bench.py                         # CPU
    python3 benchmarks/fast_path_bench.py --device cuda --out DIR # a CUDA machine

Prints a table and writes fast_path[-DEVICE].json / .md (default docs/benchmarks/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTIONS = ("Which story is about passwords? Answer with its text.",
             "Which story mentions an administrator? Answer with its text.")


def backlog_text(tokens: int, count) -> str:
    """The project's own sample backlogs, repeated with numbered sections up to about ``tokens``."""
    sample = "\n".join(p.read_text("utf-8") for p in sorted((ROOT / "examples").glob("*.stories.*")))
    parts, n = [], 0
    while n < tokens:
        part = f"## Section {len(parts) + 1}\n{sample}"
        parts.append(part)
        n += count(part)
    return "\n".join(parts)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(device: str, fn):
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def measure(mode: str, args, cache_root: Path) -> dict:
    from storytransformer.config import Config, EngineConfig
    from storytransformer.engine.local import LocalEngine

    engine = LocalEngine(Config(engine=EngineConfig(device=args.device, generate=False, fast_path=mode,
                                                    max_new_tokens=33)), cache_root=cache_root)
    status = engine.load()
    backlog = backlog_text(args.backlog_tokens, engine.count_tokens)
    asks = [[{"role": "user", "content": f"Backlog:\n{backlog}\n\nQuestion: {q}"}] for q in QUESTIONS]
    prompt_tokens = engine.count_tokens(engine.render(asks[0]))
    engine.generate([{"role": "user", "content": "Hello"}], max_new_tokens=4)  # warm-up: kernels, graph capture
    cold_s, _ = timed(args.device, lambda: engine.generate(asks[0], max_new_tokens=1))
    warm_s, _ = timed(args.device, lambda: engine.generate(asks[1], max_new_tokens=1))
    reuse = dict(engine.backend.session.last) if engine.backend.session else None
    _, text = timed(args.device, lambda: engine.generate(asks[1], max_new_tokens=33, stop=()))
    short = [{"role": "user", "content": "Write one user story about a library."}]  # decode speed, short context
    one_s, _ = timed(args.device, lambda: engine.generate(short, max_new_tokens=1, stop=()))
    many_s, story = timed(args.device, lambda: engine.generate(short, max_new_tokens=33, stop=()))
    steps = max(1, engine.count_tokens(story) - 1)  # it may end before 33 tokens
    return {"mode": mode, "fast_path": engine.backend.session is not None, "device": status.device, "dtype": status.dtype,
            "attention": status.attention, "notes": status.notes, "prompt_tokens": prompt_tokens,
            "ttft_cold_s": cold_s, "ttft_warm_s": warm_s, "reuse": reuse,
            "decode_ms_per_token": (many_s - one_s) / steps * 1e3, "decode_steps": steps, "text": text}


def to_markdown(result: dict) -> str:
    rows = result["rows"]
    lines = ["# Engine fast path against the transformers path", "",
             f"{result['device']}, {result['date']}; packaged SmolLM2-135M-Instruct; a prompt of "
             f"{rows[0]['prompt_tokens']:,} tokens (the project's sample backlogs repeated, then a question).", "",
             "| path | first token, cold s | first token, same backlog s | decode ms/token | cached prefix reused |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        reuse = f"{r['reuse']['reused']:,} of {r['reuse']['reused'] + r['reuse']['prefilled']:,} tokens" if r["reuse"] else "—"
        lines.append(f"| {'fast path' if r['fast_path'] else 'transformers'} | {r['ttft_cold_s']:.3f} | "
                     f"{r['ttft_warm_s']:.3f} | {r['decode_ms_per_token']:.2f} | {reuse} |")
    same = rows[0]["text"] == rows[1]["text"]
    lines += ["", f"Same 33-token answer from both paths: {'yes' if same else 'no'}.", "",
              "Command: `python3 benchmarks/fast_path_bench.py --device DEVICE`.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--backlog-tokens", type=int, default=6000, help="backlog size in the prompt (default 6000)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = ap.parse_args(argv)
    import datetime as dt

    with tempfile.TemporaryDirectory() as cache:
        rows = [measure(mode, args, Path(cache)) for mode in ("off", "on")]
    result = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "device": rows[0]["device"],
              "rows": rows}
    try:
        import torch

        if args.device.startswith("cuda"):
            result["device"] = f"{torch.cuda.get_device_name()} ({rows[0]['dtype']})"
        result["torch"] = torch.__version__
    except ImportError:
        pass
    suffix = "" if args.device == "cpu" else "-" + args.device.split(":")[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"fast_path{suffix}.json").write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    md = to_markdown(result)
    (args.out / f"fast_path{suffix}.md").write_text(md, "utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

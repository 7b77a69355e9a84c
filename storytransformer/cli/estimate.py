"""``storytransformer estimate PATH...``: stories, words and tokens of a backlog, and the time
and cost of one model pass over it (local engine and hosted models)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("estimate", help="size of a backlog in tokens, and time and cost of one model pass",
                       description="Count stories, words and tokens (with the configured model's tokenizer) and "
                                   "estimate one pass of a model over the backlog: time on the local engine and "
                                   "cost on hosted models, and whether the backlog fits in one prompt.")
    p.add_argument("paths", nargs="*", default=["."], help="files or directories (default: .)")
    p.add_argument("--config", type=Path, help="configuration file")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--per-file", action="store_true", help="text output: also list every file")
    p.add_argument("--measure", action="store_true",
                   help="measure the local engine's throughput on this machine instead of using the configured rates")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the token count cache")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine import EngineError
    from ..report.estimate import estimate_backlog
    from ..report.settings import load_for_command
    from ..report.tokens import TokenCounter
    from ..workspace import Workspace

    err = sys.stderr
    loaded = load_for_command("estimate", args.config, args.paths, err)
    if loaded is None:
        return 2
    config, settings = loaded
    ws = Workspace.from_paths(args.paths, config)
    for problem in sorted(ws.problems.values(), key=lambda p: p.path):
        print(problem, file=err)
    try:
        counter = TokenCounter.for_config(config, use_cache=not args.no_cache)
        measured = None
        if args.measure:
            from ..report.throughput import measure

            measured = measure(config)
    except (EngineError, OSError, ValueError) as e:
        print(f"storytransformer estimate: error: cannot load the model's tokenizer: {e}", file=err)
        return 2
    result = estimate_backlog(ws, config, settings, counter=counter, measured=measured)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(to_text(result, args.per_file))
    return 0


def to_text(r: dict, per_file: bool = False) -> str:
    from ..report.estimate import duration, money

    s, p, local = r["size"], r["pass"], r["local"]
    lines = [f"{s['stories']:,} stories, {s['words']:,} words, {s['tokens']:,} tokens in {s['files']} files "
             f"(tokenizer: {s['tokenizer']})"]
    if per_file:
        width = max((len(f["file"]) for f in r["files"]), default=4)
        lines += [f"  {f['file']:<{width}}  {f['stories']:6,} stories {f['words']:8,} words {f['tokens']:8,} tokens"
                  for f in r["files"]]
    lines.append(f"One pass (one rewrite request per story): {p['input_tokens']:,} input tokens "
                 f"({p['prompt_tokens_per_story']} prompt tokens per story), about {p['output_tokens']:,} output tokens")
    fit = ""
    if local["context_window"]:
        fit = (f"; context {local['context_window']:,} tokens: "
               + ("the backlog fits in one prompt" if local["fits_in_one_prompt"]
                  else f"the backlog needs {local['prompts_needed'] or 'more than one'} prompts"))
    lines.append(f"Local engine ({local['model']}): {duration(local['seconds'])} at {local['prefill_tokens_per_s']:g} "
                 f"prompt tokens/s and {local['decode_tokens_per_s']:g} generated tokens/s ({local['throughput']}){fit}")
    rows = [("hosted model", "$/M in", "$/M out", "cost", "context", "fits in one prompt")]
    for h in r["hosted"]:
        rows.append((h["model"], f"{h['input_per_million']:g}", f"{h['output_per_million']:g}", money(h["cost_usd"]),
                     f"{h['context_window']:,}",
                     "yes" if h["fits_in_one_prompt"] else f"no ({h['prompts_needed'] or '-'} prompts)"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(c.ljust(w) if j in (0, 5) else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip())
    lines.append(f"Assumptions: {r['assumptions']}.")
    return "\n".join(lines)

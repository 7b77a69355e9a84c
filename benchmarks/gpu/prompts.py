"""Prompts for the accuracy rows: token ids of backlog text, made once on a machine that has the
backlogs and the packaged model's tokenizer, so that a benchmark GPU (which has neither) gets them as
a small JSON file of token-id lists.

    python3 benchmarks/gpu/prompts.py BACKLOG_DIR --count 20 --tokens 256 --out prompts.json

Each prompt is the start of one backlog file (one file per prompt, in name order), cut at ``--tokens``
tokens of the packaged SmolLM2 tokenizer (vocabulary 49,152, so the ids also fit the 7.6B shape).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def backlog_prompts(folder: Path, tokenizer, count: int, tokens: int) -> list[list[int]]:
    prompts = []
    for path in sorted(folder.glob("*.txt"))[:count]:
        ids = tokenizer(path.read_text("utf-8", errors="replace"), add_special_tokens=False)["input_ids"]
        prompts.append(ids[:tokens])
    return prompts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("backlogs", type=Path, help="a folder of backlog .txt files")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if not args.backlogs.is_dir():
        print(f"prompts.py: {args.backlogs} is not a folder of backlogs", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from storytransformer.config import Config, EngineConfig
    from storytransformer.engine.local import local_backend

    # the plain transformers backend: its tokenizer is the packaged model's
    engine = local_backend(Config(engine=EngineConfig(generate=False, device="cpu", fast_path="off")))
    engine.load()
    prompts = backlog_prompts(args.backlogs, engine.tokenizer, args.count, args.tokens)
    if len(prompts) < args.count:
        print(f"prompts.py: only {len(prompts)} backlog files in {args.backlogs}", file=sys.stderr)
    args.out.write_text(json.dumps(prompts) + "\n", "utf-8")
    print(f"{len(prompts)} prompts of up to {args.tokens} tokens -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

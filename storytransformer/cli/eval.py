"""``storytransformer eval niah``: a needle-in-a-haystack test of the configured model — can it
find one story planted at different depths of backlogs of growing length?"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from ..config import ConfigError, load_config

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate the language model (needle in a haystack)",
                       description="Evaluations of the configured language model.")
    tests = p.add_subparsers(dest="evaluation", metavar="EVALUATION")
    n = tests.add_parser("niah", help="plant a story in long backlogs and ask the model to find it",
                         description="Plant a known story (the needle) at several depths of generated backlogs of "
                                     "growing length, ask the model which story is about its topic, and print the "
                                     "retrieval table (rows = prompt lengths, columns = depths).")
    n.add_argument("--lengths", default="1k,2k,4k,8k", help="prompt lengths in tokens (default 1k,2k,4k,8k)")
    n.add_argument("--depths", default="0,0.25,0.5,0.75,1", help="needle depths, 0 = first story, 1 = last")
    n.add_argument("--trials", type=int, default=1, help="haystacks per cell (default 1)")
    n.add_argument("--distractors", type=int, default=9, help="other ids ranked against the needle's (default 9)")
    n.add_argument("--haystack", type=Path, help="a directory of backlogs (one story a line) to build haystacks from "
                                                 "(default: the real backlogs when present, else the examples)")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--no-generate", action="store_true", help="score by likelihood ranking only (faster)")
    n.add_argument("--format", choices=["text", "json"], default="text")
    n.add_argument("--out", type=Path, help="also write the results as JSON to this file")
    n.add_argument("--config", type=Path, help="configuration file")
    n.set_defaults(func=run_niah)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def _default_backlogs() -> Path | None:
    for root in (Path.cwd(), PACKAGE_ROOT):
        d = root / ".." / "shared" / "data" / "backlogs" / "dalpiaz"
        if d.is_dir():
            return d
    return None


def run_niah(args: argparse.Namespace) -> int:
    from ..engine import EngineError, create_engine
    from ..engine import niah

    err = sys.stderr
    try:
        lengths, depths = niah.parse_lengths(args.lengths), niah.parse_depths(args.depths)
        if args.trials < 1 or args.distractors < 1:
            raise ValueError("--trials and --distractors must be at least 1")
        config = load_config(args.config, start=Path("."))
    except (ValueError, ConfigError) as e:
        print(f"storytransformer: error: {e}", file=err)
        return 2
    if args.haystack is not None and not args.haystack.is_dir():
        print(f"storytransformer: error: --haystack {args.haystack}: not a directory", file=err)
        return 2
    try:
        pool, label = niah.haystack_pool(args.haystack or _default_backlogs(), PACKAGE_ROOT / "examples", args.seed)
        engine = create_engine(config)
        result = niah.run(engine, pool, lengths, depths, trials=args.trials, distractors=args.distractors,
                          generate=not args.no_generate, seed=args.seed, haystack_label=label,
                          progress=lambda t: print(f"  {t.length} tokens, depth {t.depth:g}: rank {t.needle_rank}"
                                                   f"{'' if t.hit is None else ', hit' if t.hit else ', miss'}"
                                                   f" ({t.seconds:.1f} s)", file=err))
    except EngineError as e:
        print(f"storytransformer: error: {e}", file=err)
        return 2
    data = result.to_dict()
    if args.out:
        try:
            _write_atomic(args.out, json.dumps(data, indent=2) + "\n")
        except OSError as e:
            print(f"storytransformer: error: --out {args.out}: {e.strerror or e}", file=err)
            return 2
    print(json.dumps(data, indent=2) if args.format == "json" else niah.report(result))
    return 0


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

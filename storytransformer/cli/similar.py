"""``storytransformer similar "As a ..." [PATH...]``: the stories nearest in meaning to a query."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..places import place, story_at


def register(sub) -> None:
    p = sub.add_parser("similar", help="list the stories most similar in meaning to a story",
                       description="List the stories of PATHs nearest in meaning to QUERY (a story, any text, or "
                                   "FILE:LINE of a story in PATHs).")
    p.add_argument("query", help='the story to compare, e.g. "As a visitor, I want to search datasets", or '
                                 'backlog.txt:12 (1-based line, a story in PATHs)')
    p.add_argument("paths", nargs="*", default=["."], help="files or directories (default: .)")
    p.add_argument("-k", "--top", dest="k", type=int, default=None, help="how many stories (default: similarity.top_k)")
    p.add_argument("--config", type=Path, help="configuration file")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..similarity.embedding_model import ModelError
    from ..similarity.views import JSON_VERSION, load_index, neighbour_dict

    if not args.query.strip():
        print("storytransformer similar: error: the query is empty", file=sys.stderr)
        return 2
    if args.k is not None and args.k < 1:
        print("storytransformer similar: error: -k must be at least 1", file=sys.stderr)
        return 2
    try:
        ws, index = load_index(args.paths, args.config, use_cache=not args.no_cache)
    except (ConfigError, ModelError) as e:
        print(f"storytransformer similar: error: {e}", file=sys.stderr)
        return 2
    k = args.k or ws.config.similarity.top_k
    query = _query(args.query, ws)
    if query is None:
        print(f"storytransformer similar: error: {args.query}: no story on that line of the files in "
              f"{' '.join(args.paths)}", file=sys.stderr)
        return 2
    found = index.neighbours(query, k)
    if args.format == "json":
        print(json.dumps({"version": JSON_VERSION, "query": args.query, "model": index.embedder.model_id,
                          "results": [neighbour_dict(i + 1, n) for i, n in enumerate(found)]}, indent=2))
    else:
        if not found:
            print("no stories found", file=sys.stderr)
        for i, n in enumerate(found, 1):
            # two decimals, as the ST603-ST605 messages and the report show the same figure
            print(f"{i:2d}. {n.score:.2f}  {n.relation.value:<9}  {place(n.story.file, n.story.line)}  {n.story.text}")
    return 0


def _query(text: str, ws):
    """The story ``text`` names as FILE:LINE (an existing file), else ``text`` itself; None when it names
    an existing file but no story of the workspace is on that line."""
    path, _, line = text.rpartition(":")
    if not (path and line.isdigit() and Path(path).is_file()):
        return text
    return story_at(text, ws.stories())

"""``storytransformer clusters PATH...``: groups of near-duplicate stories, each with a representative."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..places import place


def register(sub) -> None:
    p = sub.add_parser("clusters", help="print groups of near-duplicate stories",
                       description="Group semantic duplicates and overlapping stories (merge candidates); "
                                   "each group's representative is its medoid.")
    p.add_argument("paths", nargs="*", default=["."], help="files or directories (default: .)")
    p.add_argument("--config", type=Path, help="configuration file")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--include-same-goal", action="store_true", help="also join stories of other roles with the same means")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..similarity.classify import Relation
    from ..similarity.embedding_model import ModelError
    from ..similarity.views import JSON_VERSION, cluster_dict, load_index

    try:
        ws, index = load_index(args.paths, args.config, use_cache=not args.no_cache)
    except (ConfigError, ModelError) as e:
        print(f"storytransformer clusters: error: {e}", file=sys.stderr)
        return 2
    relations = [Relation.DUPLICATE, Relation.OVERLAP] + ([Relation.SAME_GOAL] if args.include_same_goal else [])
    clusters = index.clusters(relations)
    if args.format == "json":
        print(json.dumps({"version": JSON_VERSION, "model": index.embedder.model_id, "stories": len(index),
                          "clusters": [cluster_dict(c) for c in clusters]}, indent=2))
        return 0
    for i, c in enumerate(clusters, 1):
        rep = c.representative
        print(f"cluster {i}: {len(c)} stories, cohesion {c.cohesion:.2f}")
        for s in c.stories:
            mark = "*" if s is rep else " "
            print(f"  {mark} {place(s.file, s.line)}  {s.text}")
    print(f"{len(clusters)} clusters over {len(index)} stories", file=sys.stderr)
    return 0

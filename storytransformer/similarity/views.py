"""Plain-data views of neighbours and clusters (for JSON output, the CLI and the daemon),
and the shared "load a workspace and index it" step of the ``similar`` and ``clusters`` commands."""

from __future__ import annotations

import sys
from pathlib import Path

from ..story import Story
from .clusters import Cluster
from .index import Neighbour

JSON_VERSION = 1


def story_dict(s: Story) -> dict:
    return {"file": s.file, "line": s.line + 1, "story_id": s.id, "text": s.text,
            "role": s.role.text if s.role else None, "means": s.means.text if s.means else None,
            "ends": s.ends.text if s.ends else None}


def neighbour_dict(rank: int, n: Neighbour) -> dict:
    sc = n.scores
    scores = None if sc is None else {"whole": round(sc.whole, 4), "means": round(sc.means, 4),
                                      "means_lexical": round(sc.means_lexical, 4),
                                      "role": None if sc.role is None else round(sc.role, 4),
                                      "ends": None if sc.ends is None else round(sc.ends, 4)}
    return {"rank": rank, "score": round(n.score, 4), "relation": n.relation.value, **story_dict(n.story), "scores": scores}


def cluster_dict(c: Cluster) -> dict:
    return {"size": len(c), "cohesion": c.cohesion, "representative": story_dict(c.representative),
            "stories": [story_dict(s) for s in c.stories]}


def load_index(paths: list[str], config_path: Path | None, use_cache: bool = True, err=sys.stderr):
    """(workspace, index) for ``paths``; raises ConfigError or ModelError with a clear message."""
    from ..config import load_config
    from ..workspace import Workspace
    from .index import SimilarityIndex

    start = Path(paths[0]) if paths else Path(".")
    config = load_config(config_path, start=start if start.exists() else Path("."))
    if not use_cache:
        config.similarity.cache = False
    ws = Workspace.from_paths(paths, config)
    for p in sorted(ws.problems.values(), key=lambda p: p.path):
        print(p, file=err)
    index = SimilarityIndex.build(ws.stories(), config.similarity, progress=_stderr_progress(err))
    index.save_cache()
    return ws, index


def _stderr_progress(err):
    if not err.isatty():
        return None

    def report(done: int, total: int) -> None:
        if total >= 64:
            print(f"\rembedding {done}/{total}", end="" if done < total else "\n", file=err, flush=True)

    return report

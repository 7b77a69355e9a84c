"""A near-duplicate cluster drawn as a graph: stories as nodes, similarities as edges (SVG).

Positions come from networkx's spring layout (similar stories pull closer) when
networkx is installed, else from a circle. Hovering a node shows its story, an edge
its similarity (SVG ``<title>``).
"""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

WIDTH, HEIGHT, MARGIN_X, MARGIN_Y, RADIUS = 320, 210, 52, 26, 11
EDGE_COLOURS = {"duplicate": "#c62828", "same-text": "#6a1b9a", "overlap": "#ef6c00"}


def layout(nodes: Sequence[str], edges: Sequence[dict]) -> dict[str, tuple[float, float]]:
    """Positions in [-1, 1]^2 for ``nodes``."""
    if len(nodes) == 1:
        return {nodes[0]: (0.0, 0.0)}
    try:
        import networkx as nx
    except ImportError:
        return circular(nodes)
    g = nx.Graph()
    g.add_nodes_from(nodes)
    for e in edges:
        g.add_edge(e["a"], e["b"], weight=max(float(e["similarity"]), 0.05))
    pos = nx.spring_layout(g, weight="weight", seed=7, k=1.2 / math.sqrt(len(nodes)))
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-9)
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    return {n: (2 * (pos[n][0] - cx) / span, 2 * (pos[n][1] - cy) / span) for n in nodes}


def circular(nodes: Sequence[str]) -> dict[str, tuple[float, float]]:
    n = len(nodes)
    return {node: (math.cos(2 * math.pi * i / n - math.pi / 2), math.sin(2 * math.pi * i / n - math.pi / 2))
            for i, node in enumerate(nodes)}


def cluster_svg(cluster: dict) -> str:
    """The SVG of one cluster dict (as :mod:`.collect` builds it)."""
    stories = cluster["stories"]
    ids = [s["story_id"] for s in stories]
    # shown by where they are (file:line) and their own id only where the format gives one, never an internal id
    where = [f'{s["file"]}:{s["line"]}' for s in stories]
    # Two stories of different files may share an id: draw node keys by position.
    keys = [f"{i}" for i in range(len(ids))]
    first_key = {}
    for k, sid in zip(keys, ids):
        first_key.setdefault(sid, k)
    edges = [{"a": first_key[e["a"]], "b": first_key[e["b"]], "similarity": e["similarity"],
              "relation": e["relation"]} for e in cluster["edges"] if e["a"] in first_key and e["b"] in first_key]
    pos = layout(keys, edges)
    sx = (WIDTH - 2 * MARGIN_X) / 2
    sy = (HEIGHT - 2 * MARGIN_Y) / 2

    def xy(k: str) -> tuple[float, float]:
        x, y = pos[k]
        return WIDTH / 2 + x * sx, HEIGHT / 2 + y * sy

    parts = [f'<svg class="cluster-graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="cluster {escape(cluster["id"])}: '
             f'{len(stories)} stories">']
    for e in edges:
        (x1, y1), (x2, y2) = xy(e["a"]), xy(e["b"])
        w = 1 + 4 * max(0.0, min(1.0, (float(e["similarity"]) - 0.5) * 2))
        colour = EDGE_COLOURS.get(e["relation"], "#607d8b")
        parts.append(f'<line class="edge" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                     f'stroke="{colour}" stroke-width="{w:.1f}" stroke-opacity="0.75">'
                     f'<title>{escape(where[int(e["a"])])} – {escape(where[int(e["b"])])}: {e["relation"]}, '
                     f'similarity {float(e["similarity"]):.2f}</title></line>')
    for k, s in zip(keys, stories):
        x, y = xy(k)
        rep = s["story_id"] == cluster["representative"] and k == first_key[s["story_id"]]
        own = s.get("story_label") or ""
        short = own or f'{s["file"].replace(chr(92), "/").rsplit("/", 1)[-1]}:{s["line"]}'
        label = short if len(short) <= 14 else "…" + short[-12:]
        parts.append(f'<g class="node{" representative" if rep else ""}"><title>{escape(own + " at " if own else "")}'
                     f'{escape(s["file"])}:{s["line"]}{" — representative" if rep else ""}\n{escape(s["text"])}</title>'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{RADIUS + (3 if rep else 0)}" fill="{"#1565c0" if rep else "#90caf9"}" '
                     f'stroke="#0d47a1" stroke-width="{2 if rep else 1}"/>'
                     f'<text x="{x:.1f}" y="{y + RADIUS + 13:.1f}" text-anchor="middle" font-size="9">{escape(label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)

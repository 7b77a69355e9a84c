"""Generate large workspaces recombined from the real backlogs (at run time; nothing is committed).

Stories are rebuilt from the roles, means and ends of real stories, mixed across
backlogs, with a share of exact and near duplicates and damaged lines, so the
rules see the same kinds of text as in the real backlogs at 10x the size.
"""

from __future__ import annotations

import random
from pathlib import Path

from storytransformer.formats.text import read_text

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "backlogs" / "dalpiaz"


def real_stories(real: Path = REAL):
    if not real.is_dir():
        raise SystemExit(f"real backlogs not found at {real}")
    out = []
    for path in sorted(real.glob("*.txt")):
        out.extend(read_text(str(path), path.read_text("utf-8")).stories)
    return out


def generate(target: Path, stories: int = 20_000, files: int = 200, seed: int = 7, real: Path = REAL) -> int:
    """Write ``files`` text files holding ``stories`` stories in all; returns the number of words."""
    rng = random.Random(seed)
    source = real_stories(real)
    parts = [s for s in source if s.role and s.means]
    target.mkdir(parents=True, exist_ok=True)
    words = 0
    per_file = stories // files
    for f in range(files):
        lines = []
        for _ in range(per_file):
            r = rng.random()
            if r < 0.15:  # a real story as written
                text = rng.choice(source).text
            elif r < 0.95:  # recombined: role, means and ends from different stories
                a, b, c = rng.choice(parts), rng.choice(parts), rng.choice(parts)
                ends = f", {c.ends.marker} {c.ends.text}" if c.ends else ""
                text = f"As a {a.role.text}, {b.means.marker} {b.means.text}{ends}."
            else:  # near duplicate: case and punctuation changed
                text = rng.choice(source).text.lower().rstrip(".")
            lines.append(text)
            words += len(text.split())
        (target / f"backlog-{f:03d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return words

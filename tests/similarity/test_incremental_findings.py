"""The incremental refresh of semantic findings gives exactly what the full computation gives.

Random edits of the kinds a writer makes (change a story's words, add one, delete one, move one to
another file, repeat one word for word, suppress a rule for a file) on real files; after each edit the
index is synchronised, as the daemon does, and the incrementally refreshed findings must equal
:func:`semantic_findings` over the same index: same findings, same order, same messages.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from storytransformer.config import Config
from storytransformer.similarity import semantic_findings
from storytransformer.similarity.incremental_findings import IncrementalFindings
from storytransformer.similarity.index import SimilarityIndex
from storytransformer.workspace import Workspace

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ALL_ON = {"ST603": "warning", "ST604": "info", "ST605": "info"}  # every semantic rule, to exercise each relation
WORDS = ("quickly", "online", "again", "my own", "every", "new", "the list of", "shared", "saved", "all")


def _story_lines(path: Path) -> list[int]:
    """0-based lines of ``path`` that hold a story (plain text backlogs: one story a line)."""
    return [i for i, line in enumerate(path.read_text("utf-8").splitlines())
            if line.strip() and not line.lstrip().startswith("#")]


def _write(ws: Workspace, path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", "utf-8")
    ws.load(str(path))


def _reworded(rng: random.Random, line: str) -> str:
    words = line.split()
    at = rng.randrange(1, len(words)) if len(words) > 1 else 1
    if rng.random() < 0.5 and len(words) > 6:
        del words[at]  # a word less
    else:
        words.insert(at, rng.choice(WORDS))
    return " ".join(words)


def _edit(rng: random.Random, ws: Workspace, files: list[Path]) -> str:
    """One random edit on disk, loaded into ``ws``; returns what it did."""
    src = rng.choice(files)
    lines = src.read_text("utf-8").splitlines()
    story_lines = _story_lines(src)
    kind = rng.choice(("reword", "reword", "add", "delete", "move", "repeat", "suppress"))
    if not story_lines:
        kind = "add"
    if kind == "reword":
        i = rng.choice(story_lines)
        lines[i] = _reworded(rng, lines[i])
    elif kind == "add":  # another file's story, reworded, at a random place (the lines below shift)
        donor = rng.choice(files)
        donor_lines = donor.read_text("utf-8").splitlines()
        candidates = _story_lines(donor)
        if not candidates:
            return "nothing"
        lines.insert(rng.randrange(len(lines) + 1), _reworded(rng, donor_lines[rng.choice(candidates)]))
    elif kind == "delete":
        del lines[rng.choice(story_lines)]
    elif kind == "repeat":  # word for word: an exact duplicate shares its original's slot
        lines.insert(rng.randrange(len(lines) + 1), lines[rng.choice(story_lines)])
    elif kind == "suppress":
        lines.append(f"# storytransformer: ignore-file {rng.choice(('ST603', 'ST604', 'ST605'))}")
    elif kind == "move":
        dest = rng.choice([f for f in files if f != src] or [src])
        moved = lines.pop(rng.choice(story_lines))
        if dest == src:
            lines.insert(0, moved)
        else:
            _write(ws, src, lines)
            dest_lines = dest.read_text("utf-8").splitlines()
            dest_lines.insert(rng.randrange(len(dest_lines) + 1), moved)
            _write(ws, dest, dest_lines)
            return f"move {src.name} -> {dest.name}"
    _write(ws, src, lines)
    return f"{kind} {src.name}"


def _check_edits(directory: Path, embedder, edits: int, seed: int, severity: dict | None = None,
                 judge: bool = False) -> dict:
    """Apply ``edits`` random edits; after each, incremental == full. Returns counts per refresh mode."""
    config = Config(severity=dict(severity or {}))
    config.similarity.judge = judge
    ws = Workspace.from_paths([str(directory)], config)
    files = sorted(Path(p) for p in ws.files if p.endswith(".txt"))
    index = SimilarityIndex.build(ws.stories(), config.similarity, embedder=embedder)
    incremental = IncrementalFindings()
    incremental.refresh(ws, config, index)
    assert incremental.stats.mode == "full"
    assert incremental.findings() == semantic_findings(ws, config, index=index)
    rng = random.Random(seed)
    modes = {"full": 0, "incremental": 0, "relinked_elsewhere": 0}
    flagged = 0
    for step in range(edits):
        did = _edit(rng, ws, files)
        index.sync(list(ws.stories()))  # the daemon's embedding step
        changed = incremental.refresh(ws, config, index)
        full = semantic_findings(ws, config, index=index)
        got = incremental.findings()
        assert got == full, f"edit {step} ({did}): incremental findings differ from the full computation"
        by_file = incremental.by_file()
        assert [f for p in sorted(by_file) for f in by_file[p]] == full
        assert set(incremental.stats.changed_files) == changed
        modes[incremental.stats.mode] += 1
        modes["relinked_elsewhere"] += incremental.stats.relinked_elsewhere
        flagged += len(full)
    assert flagged, "no edit left any semantic finding: the test compared empty lists"
    return modes


@pytest.fixture()
def examples_copy(tmp_path) -> Path:
    d = tmp_path / "examples"
    shutil.copytree(EXAMPLES, d)
    return d


def test_sample_edits_refresh_like_the_full_computation(examples_copy, embedder):
    modes = _check_edits(examples_copy, embedder, edits=40, seed=3, severity=ALL_ON)
    assert modes["incremental"] == 40  # one-story edits never need the full computation


@pytest.fixture(scope="module")
def real_copy(real_backlogs, tmp_path_factory) -> Path:
    """The 22 real backlogs, copied at test time (they are edited; nothing is committed)."""
    d = tmp_path_factory.mktemp("real")
    for f in sorted(real_backlogs.glob("*.txt")):
        (d / f.name).write_text(f.read_text("utf-8"), "utf-8")
    return d


@pytest.mark.parametrize("severity, seed", [({}, 5), (ALL_ON, 8)], ids=["defaults", "all-semantic-rules"])
def test_real_backlog_edits_refresh_like_the_full_computation(real_copy, embedder, severity, seed, tmp_path):
    d = tmp_path / "real"
    shutil.copytree(real_copy, d)
    modes = _check_edits(d, embedder, edits=60, seed=seed, severity=severity)
    assert modes["incremental"] == 60
    print(f"slots whose relations changed away from the edited stories: {modes['relinked_elsewhere']}")


def test_real_backlog_edits_refresh_like_the_full_computation_under_the_learned_judge(real_copy, embedder, tmp_path):
    d = tmp_path / "real"
    shutil.copytree(real_copy, d)
    modes = _check_edits(d, embedder, edits=40, seed=13, severity=ALL_ON, judge=True)
    assert modes["incremental"] == 40


def test_settings_change_and_rescan_fall_back_to_the_full_computation(examples_copy, embedder):
    config = Config(severity=dict(ALL_ON))
    ws = Workspace.from_paths([str(examples_copy)], config)
    index = SimilarityIndex.build(ws.stories(), config.similarity, embedder=embedder)
    incremental = IncrementalFindings()
    incremental.refresh(ws, config, index)
    fewer = Config(severity={"ST603": "warning"})
    incremental.refresh(ws, fewer, index)
    assert incremental.stats.mode == "full" and incremental.stats.reason == "other settings"
    assert incremental.findings() == semantic_findings(ws, fewer, index=index)
    rescanned = Workspace.from_paths([str(examples_copy)], fewer)  # every file object is new
    index.sync(list(rescanned.stories()))
    incremental.refresh(rescanned, fewer, index)
    assert incremental.findings() == semantic_findings(rescanned, fewer, index=index)
    off = Config(ignore=["ST6"])
    changed = incremental.refresh(rescanned, off, index)
    assert incremental.stats.mode == "off" and incremental.findings() == []
    assert changed == {f.file for f in semantic_findings(rescanned, fewer, index=index)}


def test_a_replaced_file_falls_back_to_the_full_computation_and_an_insertion_does_not(real_copy, embedder, tmp_path):
    d = tmp_path / "real"
    shutil.copytree(real_copy, d)
    config = Config()
    ws = Workspace.from_paths([str(d)], config)
    index = SimilarityIndex.build(ws.stories(), config.similarity, embedder=embedder)
    incremental = IncrementalFindings()
    incremental.refresh(ws, config, index)
    files = sorted(d.glob("*.txt"), key=lambda f: -len(_story_lines(f)))
    big, donor = files[0], files[1]
    assert len(_story_lines(big)) > 64, "the largest real backlog is expected to hold more than 64 stories"
    # A line inserted at the top moves every story of the file: incremental all the same.
    _write(ws, big, ["As a visitor, I want to see the opening hours, so that I come when it is open."]
           + big.read_text("utf-8").splitlines())
    index.sync(list(ws.stories()))
    incremental.refresh(ws, config, index)
    assert incremental.stats.mode == "incremental" and incremental.stats.changed_stories > 64
    assert incremental.findings() == semantic_findings(ws, config, index=index)
    # The whole file replaced by another backlog's stories: too many new texts, computed in full.
    _write(ws, big, [_reworded(random.Random(1), line) for line in donor.read_text("utf-8").splitlines() if line.strip()])
    index.sync(list(ws.stories()))
    incremental.refresh(ws, config, index)
    assert incremental.stats.mode == "full" and "changed their text" in incremental.stats.reason
    assert incremental.findings() == semantic_findings(ws, config, index=index)


def test_per_file_ignores_hold_in_the_incremental_refresh_and_a_change_of_them_recomputes(examples_copy, embedder):
    config = Config(severity=dict(ALL_ON))
    ws = Workspace.from_paths([str(examples_copy)], config)
    index = SimilarityIndex.build(ws.stories(), config.similarity, embedder=embedder)
    everything = semantic_findings(ws, config, index=index)
    flagged = sorted({Path(f.file).name for f in everything})
    assert flagged, "the sample is expected to have semantic findings"
    quiet = Config(severity=dict(ALL_ON), per_file_ignores={flagged[0]: ["ST6"]}, root=str(examples_copy))
    incremental = IncrementalFindings()
    incremental.refresh(ws, quiet, index)
    got = incremental.findings()
    assert got == semantic_findings(ws, quiet, index=index)
    assert not [f for f in got if Path(f.file).name == flagged[0]]
    assert [f for f in everything if Path(f.file).name == flagged[0]], "the ignored file had findings before"
    # edits: still incremental, still without the ignored file's findings
    for seed in range(3):
        _edit(random.Random(seed), ws, sorted(examples_copy.glob("*.txt")))
        index.sync(list(ws.stories()))
        incremental.refresh(ws, quiet, index)
        assert incremental.stats.mode == "incremental"
        assert incremental.findings() == semantic_findings(ws, quiet, index=index)
    # the setting taken away again: recomputed in full, and the file's findings are back
    incremental.refresh(ws, config, index)
    assert incremental.stats.mode == "full" and incremental.stats.reason == "other settings"
    assert incremental.findings() == semantic_findings(ws, config, index=index)

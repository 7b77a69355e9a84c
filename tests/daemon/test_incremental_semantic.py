"""A real daemon refreshes semantic findings incrementally after edits, and says what a full computation says.

After each edit (an unsaved overlay: a reworded story, an added paraphrase, a deleted line; then the
overlay closed) the daemon's semantic findings for the edited file and for an untouched file must equal
:func:`semantic_findings` computed from scratch over the same texts, converted for the wire.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import DaemonProcess
from .test_models import need

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEMANTIC = ("ST603", "ST604", "ST605")
PARAPHRASE = "US-20: As a member, I want to extend the loan of a borrowed book on the website, so that I avoid a late fee."


def _expected(root: Path, overlays: dict[str, str], path: str) -> list[dict]:
    """Semantic findings of ``path`` computed in full from the files, with ``overlays`` in place of disk."""
    from storytransformer.config import load_config
    from storytransformer.similarity import semantic_findings
    from storytransformer.workspace import Workspace
    from storytransformer_server.daemon.wire import finding_to_wire

    config = load_config(start=root)
    ws = Workspace.from_paths([str(root)], config)
    for p, text in overlays.items():
        ws.set_text(p, text)
    return [finding_to_wire(f) for f in semantic_findings(ws, config) if f.file == path]


@pytest.fixture
def root(tmp_path) -> Path:
    d = tmp_path / "ws"
    shutil.copytree(EXAMPLES, d)
    (d / ".storytransformer.toml").write_text('[severity]\nST604 = "info"\nST605 = "info"\n', "utf-8")
    return d


async def test_edits_refresh_semantic_findings_like_a_full_computation(tmp_path, root):
    need("sentence_transformers", "numpy")
    daemon = DaemonProcess(tmp_path)
    daemon.start()
    client = await daemon.connect()
    library = str(root / "library.stories.txt")
    other = str(root / "accounts.stories.md")
    lines = Path(library).read_text("utf-8").splitlines()
    story_lines = [i for i, line in enumerate(lines) if line.startswith("US-")]
    edits = [
        lines[:story_lines[0] + 1] + [PARAPHRASE] + lines[story_lines[0] + 1:],  # a paraphrase of US-1 added
        [line.replace("reserve a book", "reserve a printed book") for line in lines] + [PARAPHRASE],  # reworded
        [line for i, line in enumerate(lines) if i != story_lines[0]] + [PARAPHRASE],  # US-1 deleted
    ]
    try:
        await client.request("workspace/register", {"root": str(root)})
        found = await client.request("findings", {"path": library, "semantic": True}, timeout=180)
        assert found["semantic"] is True
        assert [f for f in found["findings"] if f["code"] in SEMANTIC] == _expected(root, {}, library)
        flagged = 0
        for version, edited in enumerate(edits, start=1):
            text = "\n".join(edited) + "\n"
            await client.request("document/overlay", {"path": library, "text": text, "version": version})
            for path in (library, other):
                found = await client.request("findings", {"path": path, "semantic": True}, timeout=120)
                got = [f for f in found["findings"] if f["code"] in SEMANTIC]
                assert got == _expected(root, {library: text}, path), f"edit {version}, {Path(path).name}"
                flagged += len(got)
        assert flagged, "no edit gave a semantic finding: the comparison proved nothing"
        await client.request("document/close", {"path": library})
        found = await client.request("findings", {"path": library, "semantic": True}, timeout=120)
        assert [f for f in found["findings"] if f["code"] in SEMANTIC] == _expected(root, {}, library)
        log = (daemon.logs / "daemon.log").read_text()
        assert "incremental refresh" in log  # the edits were refreshed incrementally, not in full
    finally:
        await client.close()
        daemon.stop()

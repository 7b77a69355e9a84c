"""The model adapter against a real daemon process (no model loaded: that is the engine's tests' job)."""

from __future__ import annotations


import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import OwnDaemon, open_doc, start, until, uri

DAEMON = OwnDaemon.create("st-lsp-daemon-")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon():
    with DAEMON.running():
        yield DAEMON.runtime


@pytest_lsp.fixture(config=DAEMON.config)
async def daemon_client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def test_engine_status_comes_from_the_running_daemon(daemon, daemon_client, workspace):
    await start(daemon_client, workspace, options={"daemon": {"spawn": False}})
    # the probe at start reaches the daemon: the reason is the engine's, not a connection error
    status = await until(lambda: [s for s in daemon_client.engine_status if "daemon" not in (s["reason"] or "")],
                         timeout=30, what="an engine status from the daemon")
    assert status[-1]["state"] in ("unavailable", "ready", "loading")
    reply = await daemon_client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="storytransformer.engineStatus"))
    assert reply["state"] == status[-1]["state"]
    assert "cannot reach" not in (reply["reason"] or "")


async def test_semantic_overlaps_come_from_the_daemon(daemon, daemon_client, tmp_path):
    """Two stories that say the same in other words, in two files: the daemon's index finds them."""
    (tmp_path / "a.txt").write_text(
        "As a visitor, I want to search the catalogue for books, so that I can find something to read.\n"
        "As a member, I want to renew a loan online, so that I avoid a fine.\n", "utf-8")
    (tmp_path / "b.txt").write_text(
        "As a visitor, I want to look up books in the catalogue, so that I can find something to read.\n"
        "As a librarian, I want to print the monthly statistics.\n", "utf-8")
    await start(daemon_client, tmp_path, options={"daemon": {"spawn": False}})
    u = open_doc(daemon_client, tmp_path / "a.txt")
    semantic = await until(lambda: [d for d in daemon_client.diagnostics.get(u, ()) if d.code in ("ST603", "ST604")],
                           timeout=240, what="a semantic finding from the daemon")
    (d,) = semantic
    assert d.range.start.line == 0 and d.source == "storytransformer"
    assert [r.location.uri for r in d.related_information] == [uri(tmp_path / "b.txt")]
    # the deterministic findings are still there, and "Merge with" is offered on the semantic one
    actions = await daemon_client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=u), range=d.range,
        context=types.CodeActionContext(diagnostics=[d], only=[types.CodeActionKind.QuickFix])))
    assert any(a.title.startswith("Merge with ") for a in actions or [])


async def _merges_with_us10(client, root, path, line: int) -> list[str]:
    """The new texts of the 'Merge into' actions with US-10 (library.stories.txt:12) offered on the daemon's
    ST603 at ``line`` of ``path``."""
    await start(client, root, options={"daemon": {"spawn": False}})
    u = open_doc(client, path)
    (d,) = await until(lambda: [d for d in client.diagnostics.get(u, ()) if d.code == "ST603"
                                and d.range.start.line == line], timeout=240, what=f"ST603 on line {line + 1}")
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=u), range=d.range,
        context=types.CodeActionContext(diagnostics=[d], only=[types.CodeActionKind.QuickFix])))
    merges = [a for a in actions or [] if a.title.startswith("Merge into") and "library.stories.txt:12" in a.title]
    texts = [e.new_text for a in merges for change in a.edit.document_changes or []
             for e in getattr(change, "edits", ()) if e.new_text.strip()]
    assert texts, [a.title for a in actions or []]
    return texts


def _sample(tmp_path, extra: str = ""):
    import shutil
    from pathlib import Path

    root = tmp_path / "ws"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples", root)
    library = root / "library.stories.txt"
    library.write_text(library.read_text("utf-8") + extra, "utf-8")
    return root, library


async def test_a_duplicate_merge_keeps_a_benefit_the_daemon_finds_different(daemon, daemon_client, tmp_path):
    """US-1 and US-10 of the sample ask for one thing for two reasons (a late fee, reading longer): every
    merge the editor offers keeps both."""
    root, library = _sample(tmp_path)
    for text in await _merges_with_us10(daemon_client, root, library, 2):  # US-1
        assert "late fee" in text and "keep reading it for longer" in text, text


async def test_a_duplicate_merge_writes_a_benefit_the_daemon_finds_alike_once(daemon, daemon_client, tmp_path):
    """US-21 gives US-10's reason in other words ("more time to finish reading it"; few shared words, so
    only the daemon's benefit cosine can tell): a merge is offered that writes it once (by shared words
    alone every merge would say both)."""
    root, library = _sample(tmp_path, "US-21: As a member, I want to extend a borrowed book on the website, so that I "
                                      "have more time to finish reading it.\n")
    last = len(library.read_text("utf-8").splitlines()) - 1
    texts = await _merges_with_us10(daemon_client, root, library, last)
    assert any(("more time to finish reading it" in t) != ("keep reading it for longer" in t) for t in texts), texts


async def test_a_near_restatement_writes_a_benefit_below_the_cut_once(daemon, daemon_client, tmp_path):
    """US-22 restates US-10 nearly word for word ("via the website" / "on the website") and gives its reason in
    words whose cosine is below the benefits' cut ("I get more reading time"): the daemon's means cosine
    lets the editor write the benefit once (with the benefits' cosine alone every merge would say both)."""
    from storytransformer.similarity.benefits import ALIKE_COSINE, CLOSE_MEANS_ALIKE_COSINE

    root, library = _sample(tmp_path, "US-22: As a member, I want to renew a borrowed book via the website, so that I "
                                      "get more reading time.\n")
    last = len(library.read_text("utf-8").splitlines()) - 1
    texts = await _merges_with_us10(daemon_client, root, library, last)
    assert any(("more reading time" in t) != ("keep reading it for longer" in t) for t in texts), texts
    from storytransformer.similarity.benefits import EmbeddedBenefits
    from storytransformer.similarity.embedder import shared_embedder

    cosine = EmbeddedBenefits(shared_embedder()).cosine("I get more reading time", "I can keep reading it for longer")
    assert CLOSE_MEANS_ALIKE_COSINE <= cosine < ALIKE_COSINE, cosine  # only the lower cut writes it once

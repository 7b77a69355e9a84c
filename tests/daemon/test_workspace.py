"""Workspaces through the daemon: register, overlays, findings, outside changes, bursts, several clients."""

from __future__ import annotations

import asyncio

import pytest

from storytransformer_server.daemon import protocol as P
from storytransformer_server.daemon.protocol import DaemonError
from storytransformer_server.daemon.wire import finding_from_wire

from .conftest import BAD_STORY, GOOD_STORIES, wait_for


def codes(answer: dict) -> set[str]:
    return {f["code"] for f in answer["findings"]}


async def test_register_reads_the_story_files_and_skips_ignored_dirs(daemon, workspace):
    (workspace / "node_modules" / "vendor.txt").write_text(BAD_STORY, "utf-8")
    client = await daemon.connect()
    try:
        summary = await client.request("workspace/register", {"root": str(workspace)})
        assert summary["files"] == 1 and summary["stories"] == 2
        st = await client.request("status")
        assert [r["root"] for r in st["roots"]] == [str(workspace)]
    finally:
        await client.close()


async def test_register_refuses_a_missing_root(daemon, tmp_path):
    client = await daemon.connect()
    try:
        with pytest.raises(DaemonError) as e:
            await client.request("workspace/register", {"root": str(tmp_path / "nope")})
        assert e.value.code == P.NOT_FOUND and "nope" in e.value.message
        with pytest.raises(DaemonError) as e:
            await client.request("workspace/register", {})
        assert e.value.code == P.INVALID_PARAMS
    finally:
        await client.close()


async def test_bad_config_is_reported_with_file_and_key(daemon, workspace):
    (workspace / ".storytransformer.toml").write_text("max_wrods = 3\n", "utf-8")
    client = await daemon.connect()
    try:
        with pytest.raises(DaemonError) as e:
            await client.request("workspace/register", {"root": str(workspace)})
        assert e.value.code == P.INVALID_PARAMS
        assert ".storytransformer.toml" in e.value.message and "max_wrods" in e.value.message
    finally:
        await client.close()


async def test_overlay_changes_findings_and_close_goes_back_to_disk(daemon, workspace):
    path = str(workspace / "stories" / "backlog.txt")
    client = await daemon.connect()
    try:
        await client.request("workspace/register", {"root": str(workspace)})
        assert (await client.request("findings", {"semantic": False, "path": path}))["findings"] == []
        answer = await client.request("document/overlay", {"path": path, "text": BAD_STORY, "version": 2})
        assert answer["applied"] is True
        found = await client.request("findings", {"semantic": False, "path": path})
        assert found["version"] == 2
        assert {"ST101", "ST701"} <= codes(found)
        f = finding_from_wire(next(x for x in found["findings"] if x["code"] == "ST101"))
        assert f.file == path and f.range.start.line == 0
        # an older version never replaces a newer one
        stale = await client.request("document/overlay", {"path": path, "text": GOOD_STORIES, "version": 1})
        assert stale["applied"] is False
        assert "ST101" in codes(await client.request("findings", {"semantic": False, "path": path}))
        await client.request("document/close", {"path": path})
        assert (await client.request("findings", {"semantic": False, "path": path}))["findings"] == []
    finally:
        await client.close()


async def test_the_language_servers_way_asks_for_no_deterministic_findings(daemon, workspace):
    """The language server runs the rules itself: with ``deterministic: false`` the daemon lints nothing
    and answers only what its index adds (here nothing: no semantic findings asked for)."""
    path = str(workspace / "stories" / "backlog.txt")
    client = await daemon.connect()
    try:
        await client.request("workspace/register", {"root": str(workspace)})
        await client.request("document/overlay", {"path": path, "text": BAD_STORY, "version": 2})
        answer = await client.request("findings", {"semantic": False, "deterministic": False, "path": path})
        assert answer["findings"] == [] and answer["version"] == 2
        # other clients still get the deterministic findings by default
        assert "ST101" in codes(await client.request("findings", {"semantic": False, "path": path}))
        with pytest.raises(DaemonError) as e:
            await client.request("findings", {"deterministic": "no", "path": path})
        assert e.value.code == P.INVALID_PARAMS and "deterministic" in e.value.message
    finally:
        await client.close()


async def test_findings_outside_any_root_say_what_to_do(daemon, tmp_path):
    client = await daemon.connect()
    try:
        with pytest.raises(DaemonError) as e:
            await client.request("findings", {"semantic": False, "path": str(tmp_path / "x.txt")})
        assert e.value.code == P.NOT_FOUND and "workspace/register" in e.value.message
    finally:
        await client.close()


async def test_cross_file_duplicate_seen_by_the_other_client_after_an_overlay(daemon, workspace):
    other = workspace / "stories" / "other.txt"
    other.write_text("As a clerk, I want to print labels, so that parcels ship.\n", "utf-8")
    a, b = await daemon.connect("a"), await daemon.connect("b")
    seen_by_b: list[dict] = []
    b.on_notification(P.INDEX_CHANGED, seen_by_b.append)
    try:
        for c in (a, b):
            await c.request("workspace/register", {"root": str(workspace)})
        backlog = str(workspace / "stories" / "backlog.txt")
        assert "ST601" not in codes(await b.request("findings", {"semantic": False, "path": backlog}))
        # client a types a copy of one of backlog.txt's stories into other.txt, unsaved
        await a.request("document/overlay", {"path": str(other), "text": GOOD_STORIES.splitlines()[0] + "\n", "version": 1})
        await wait_for(lambda: any(str(other) in n["paths"] for n in seen_by_b))
        assert "ST601" in codes(await b.request("findings", {"semantic": False, "path": backlog}))
        # a disconnects: its unsaved text is dropped, the duplicate disappears for b
        await a.close()
        await wait_for(lambda: any(n.get("reason") == "overlay-closed" for n in seen_by_b))
        assert "ST601" not in codes(await b.request("findings", {"semantic": False, "path": backlog}))
    finally:
        await a.close()
        await b.close()


async def test_outside_change_reaches_every_client_and_the_findings(daemon, workspace):
    a, b = await daemon.connect("a"), await daemon.connect("b")
    seen = {"a": [], "b": []}
    a.on_notification(P.INDEX_CHANGED, seen["a"].append)
    b.on_notification(P.INDEX_CHANGED, seen["b"].append)
    try:
        for c in (a, b):
            await c.request("workspace/register", {"root": str(workspace)})
        path = workspace / "stories" / "backlog.txt"
        path.write_text(BAD_STORY, "utf-8")  # e.g. git checkout, another tool
        for name in ("a", "b"):
            await wait_for(lambda: any(str(path) in n["paths"] for n in seen[name]))
        assert "ST101" in codes(await a.request("findings", {"semantic": False, "path": str(path)}))
        # a new file in a new folder, and a deleted one
        (workspace / "new").mkdir()
        (workspace / "new" / "more.txt").write_text(BAD_STORY, "utf-8")
        await wait_for(lambda: any(str(workspace / "new" / "more.txt") in n["paths"] for n in seen["a"]))
        before_delete = len(seen["b"])
        path.unlink()
        await wait_for(lambda: any(str(path) in n["paths"] for n in seen["b"][before_delete:]))
        summary = (await a.request("status"))["roots"][0]
        assert summary["files"] == 1
        # ignored folders never cause notifications
        before = len(seen["a"])
        (workspace / "node_modules" / "pkg.txt").write_text(BAD_STORY, "utf-8")
        (workspace / "stories" / "later.txt").write_text(GOOD_STORIES, "utf-8")  # a marker change after it
        await wait_for(lambda: any(str(workspace / "stories" / "later.txt") in n["paths"] for n in seen["a"]))
        assert not any("node_modules" in p for n in seen["a"][before:] for p in n["paths"])
    finally:
        await a.close()
        await b.close()


async def test_burst_of_5000_files_is_coalesced(daemon, workspace):
    client = await daemon.connect()
    notes: list[dict] = []
    client.on_notification(P.INDEX_CHANGED, notes.append)
    try:
        await client.request("workspace/register", {"root": str(workspace)})
        burst = workspace / "checkout"
        burst.mkdir()
        for i in range(5000):
            (burst / f"s{i:04d}.txt").write_text(f"As a user {i}, I want to see item {i}, so that I know it.\n", "utf-8")

        async def all_loaded():
            return (await client.request("status"))["roots"][0]["files"] == 5001

        for _ in range(600):
            if await all_loaded():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the 5,000 new files never all reached the workspace")
        last = str(burst / "s4999.txt")
        for _ in range(200):  # the status can answer between loading the last batch and notifying it
            if any(last in n["paths"] for n in notes):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the last file of the burst was loaded but never notified")
        assert 1 <= len(notes) <= 50, f"{len(notes)} notifications for one burst"
    finally:
        await client.close()


async def test_slow_request_of_one_client_does_not_block_another(daemon, workspace):
    a, b = await daemon.connect("a"), await daemon.connect("b")
    try:
        await b.request("workspace/register", {"root": str(workspace)})
        # a holds worker threads and the event loop with slow work (60 s, the most debug/sleep allows: the
        # window b's requests must fit in, even on loaded cores; cancelled below, so the test does not wait it out)
        slow = [asyncio.create_task(a.request("debug/sleep", {"seconds": 60, "thread": True}, timeout=90)) for _ in range(3)]
        slow.append(asyncio.create_task(a.request("debug/sleep", {"seconds": 60}, timeout=90)))
        await asyncio.sleep(0.2)
        for _ in range(20):
            answer = await b.request("findings", {"semantic": False, "path": str(workspace / "stories" / "backlog.txt")}, timeout=15)
            assert answer["findings"] == []
        assert not any(t.done() for t in slow)
        # and a's own other requests are not stuck behind its slow ones
        assert (await a.request("status", timeout=15))["pid"] == daemon.proc.pid
        assert not any(t.done() for t in slow)
        for t in slow:
            t.cancel()
    finally:
        await a.close()
        await b.close()


async def test_unregister_by_the_last_client_closes_the_root(daemon, workspace):
    a, b = await daemon.connect("a"), await daemon.connect("b")
    try:
        for c in (a, b):
            await c.request("workspace/register", {"root": str(workspace)})
        await a.request("workspace/unregister", {"root": str(workspace)})
        assert len((await a.request("status"))["roots"]) == 1
        await b.close()
        await wait_for(lambda: True)
        for _ in range(100):
            if not (await a.request("status"))["roots"]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("root still open after its last client left")
    finally:
        await a.close()
        await b.close()


async def test_a_model_that_cannot_load_is_a_clear_error_not_a_crash(daemon, workspace):
    (workspace / ".storytransformer.toml").write_text('[engine]\nmodel = "./no-such-model.gguf"\n', "utf-8")
    client = await daemon.connect()
    states: list[dict] = []
    client.on_notification(P.ENGINE_STATE, states.append)
    try:
        await client.request("workspace/register", {"root": str(workspace)})
        path = str(workspace / "stories" / "backlog.txt")
        from storytransformer.formats import read_source

        story_id = read_source(path, GOOD_STORIES).stories[0].id
        with pytest.raises(DaemonError) as e:
            await client.request("propose/rewrite", {"file": path, "id": story_id}, timeout=60)
        assert e.value.code == P.ENGINE_UNAVAILABLE and "no-such-model" in e.value.message
        status = await client.request("engine/status")
        assert status["state"] == "failed" and "no-such-model" in status["error"]
        await wait_for(lambda: any(s["state"] == "failed" for s in states))
        assert (await client.request("status"))["pid"] == daemon.proc.pid
    finally:
        await client.close()


async def test_proposal_for_a_missing_story_names_it(daemon, workspace):
    client = await daemon.connect()
    try:
        await client.request("workspace/register", {"root": str(workspace)})
        path = str(workspace / "stories" / "backlog.txt")
        with pytest.raises(DaemonError) as e:
            await client.request("propose/split", {"file": path, "id": "no-such-id"})
        assert e.value.code == P.NOT_FOUND and "no-such-id" in e.value.message
        with pytest.raises(DaemonError) as e:
            await client.request("propose/merge", {"stories": [{"file": path, "id": "1"}]})
        assert e.value.code == P.INVALID_PARAMS
    finally:
        await client.close()


async def test_a_loose_file_outside_every_root_is_served_on_its_own(daemon, tmp_path):
    loose = tmp_path / "notes" / "ideas.txt"
    loose.parent.mkdir()
    loose.write_text(GOOD_STORIES, "utf-8")
    client = await daemon.connect()
    try:
        await client.request("document/overlay", {"path": str(loose), "text": BAD_STORY, "version": 1})
        assert "ST101" in codes(await client.request("findings", {"semantic": False, "path": str(loose)}))
        roots = (await client.request("status"))["roots"]
        assert [r["root"] for r in roots] == [str(loose)] and roots[0]["files"] == 1
        await client.request("document/close", {"path": str(loose)})
        assert (await client.request("findings", {"semantic": False, "path": str(loose)}))["findings"] == []
    finally:
        await client.close()


async def test_an_unreadable_file_is_reported_with_its_line(daemon, workspace):
    bad = workspace / "stories" / "latin1.txt"
    # two stories of three lines: a backlog (a walk takes plain text files only when mostly stories)
    bad.write_bytes("As a user, I want to pay in \u20ac, so that I can buy.\n".encode("utf-8") + b"caf\xe9\n"
                    b"As a user, I want to pay by card, so that I can buy.\n")
    client = await daemon.connect()
    try:
        await client.request("workspace/register", {"root": str(workspace)})
        answer = await client.request("findings", {"semantic": False, "path": str(bad)})
        assert answer["findings"] == []
        assert answer["problem"]["line"] == 2 and "UTF-8" in answer["problem"]["message"]
        ok = await client.request("findings", {"semantic": False, "path": str(workspace / "stories" / "backlog.txt")})
        assert ok["problem"] is None
    finally:
        await client.close()


async def test_editing_the_project_configuration_reloads_the_root(daemon, workspace):
    path = workspace / "stories" / "backlog.txt"
    path.write_text(BAD_STORY, "utf-8")
    client = await daemon.connect()
    notes: list[dict] = []
    client.on_notification(P.INDEX_CHANGED, notes.append)
    try:
        await client.request("workspace/register", {"root": str(workspace)})
        assert "ST101" in codes(await client.request("findings", {"semantic": False, "path": str(path)}))
        (workspace / ".storytransformer.toml").write_text('ignore = ["ST101"]\n', "utf-8")
        await wait_for(lambda: any(n.get("rescan") for n in notes))
        found = codes(await client.request("findings", {"semantic": False, "path": str(path)}))
        assert "ST101" not in found and "ST701" in found
        # a broken configuration keeps the last good one (and the daemon serving)
        (workspace / ".storytransformer.toml").write_text('ignore = [\n', "utf-8")
        before = len(notes)
        await wait_for(lambda: len(notes) > before)
        assert "ST101" not in codes(await client.request("findings", {"semantic": False, "path": str(path)}))
    finally:
        await client.close()


def test_a_root_reads_backlogs_only(tmp_path):
    """The daemon's roots take the same story files as `check DIR` and the language server."""
    from storytransformer_server.daemon.workspaces import Root

    (tmp_path / "requirements.txt").write_text("requests==2.31.0\nnumpy==1.26.4\n")
    (tmp_path / "sprint.txt").write_text("As a guest, I want to book a room, so that I can stay.\n"
                                         "As a host, I want to list a room, so that guests find it.\n")
    root = Root.open(str(tmp_path))
    assert [p.rsplit("/", 1)[-1] for p in root.workspace.files] == ["sprint.txt"]
    assert root.wants(str(tmp_path / "sprint.txt")) and not root.wants(str(tmp_path / "requirements.txt"))
    (tmp_path / "requirements.txt").write_text("As a guest, I want to pay online, so that I can stay.\n")
    changed, _ = root.apply_disk_changes({str(tmp_path / "requirements.txt")}, rescan=False)
    assert changed == [str(tmp_path / "requirements.txt")]  # now a backlog: read

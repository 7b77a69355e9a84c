"""Paths in RPC requests are confined: the daemon reads from disk only files inside registered roots.

A file outside every root is served only from the text the client sends (an overlay);
``..`` segments and symbolic links that lead out of a root are not followed.
"""

from __future__ import annotations

import os

import pytest

from storytransformer_server.daemon import protocol as P
from storytransformer_server.daemon.protocol import DaemonError

SECRET = "I want to read the launch codes quickly.\n"  # ill-formed on purpose: it would have findings
GOOD = "As a visitor, I want to search the catalogue, so that I find books.\n"


@pytest.fixture
def layout(tmp_path):
    ws = tmp_path / "ws"
    (ws / "stories").mkdir(parents=True)
    (ws / "stories" / "backlog.txt").write_text(GOOD, "utf-8")
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET, "utf-8")
    return ws, outside / "secret.txt"


async def _refused(client, method: str, params: dict) -> DaemonError:
    with pytest.raises(DaemonError) as e:
        await client.request(method, params)
    assert e.value.code == P.NOT_FOUND, e.value
    return e.value


async def test_paths_outside_every_root_are_not_read(daemon, layout):
    ws, secret = layout
    client = await daemon.connect()
    try:
        await client.request("workspace/register", {"root": str(ws)})
        for path in ("/etc/passwd", str(secret), f"{ws}/../../{secret.parent.name}/secret.txt",
                     f"{ws}/stories/../../private/secret.txt"):
            await _refused(client, "findings", {"path": path, "semantic": False})
            await _refused(client, "propose/split", {"file": path, "id": "1"})
            await _refused(client, "propose/rewrite", {"file": path, "id": "1"})
            await _refused(client, "propose/merge", {"stories": [{"file": path, "id": "1"},
                                                                 {"file": str(ws / "stories" / "backlog.txt"), "id": "1"}]})
            await _refused(client, "document/close", {"path": path})
    finally:
        await client.close()


async def test_an_overlay_outside_the_roots_never_exposes_the_file_on_disk(daemon, layout):
    ws, secret = layout
    client = await daemon.connect()
    try:
        await client.request("document/overlay", {"path": str(secret), "text": GOOD, "version": 1})
        served = await client.request("findings", {"path": str(secret), "semantic": False})
        assert served["findings"] == []  # the text it sent, not the file
        await client.request("document/close", {"path": str(secret)})
        after = await client.request("findings", {"path": str(secret), "semantic": False})
        assert after["findings"] == [] and after["problem"] is None  # closing does not fall back to the disk text
        await _refused(client, "propose/split", {"file": str(secret), "id": "1"})
        summary = (await client.request("status"))["roots"]
        assert all(r["stories"] == 0 for r in summary if r["root"] == str(secret))
    finally:
        await client.close()


async def test_symbolic_links_out_of_a_root_are_not_followed(daemon, layout):
    ws, secret = layout
    os.symlink(secret, ws / "stories" / "leak.txt")
    os.symlink(secret.parent, ws / "stories" / "elsewhere")
    client = await daemon.connect()
    try:
        summary = await client.request("workspace/register", {"root": str(ws)})
        assert summary["files"] == 1 and summary["stories"] == 1  # only backlog.txt
        for path in (ws / "stories" / "leak.txt", ws / "stories" / "elsewhere" / "secret.txt"):
            answer = await client.request("findings", {"path": str(path), "semantic": False})
            assert answer["findings"] == []
            with pytest.raises(DaemonError) as e:
                await client.request("propose/split", {"file": str(path), "id": "1"})
            assert e.value.code == P.NOT_FOUND
        # a link made while the daemon runs is not read either (the file watcher reloads through ``wants``)
        os.symlink(secret, ws / "stories" / "late.txt")
        (ws / "stories" / "backlog.txt").write_text(GOOD + GOOD.replace("visitor", "member"), "utf-8")
        import asyncio

        for _ in range(100):
            status = (await client.request("status"))["roots"][0]
            if status["stories"] == 2:
                break
            await asyncio.sleep(0.05)
        assert status["files"] == 1 and status["stories"] == 2
        late = await client.request("findings", {"path": str(ws / "stories" / "late.txt"), "semantic": False})
        assert late["findings"] == []
    finally:
        await client.close()

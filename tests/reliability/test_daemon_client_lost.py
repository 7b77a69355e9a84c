"""A client whose connection breaks while it sends leaves no unretrieved exception behind."""

from __future__ import annotations

import asyncio
import gc

from storytransformer_server.daemon import protocol as P
from storytransformer_server.daemon.client import DaemonClient
from storytransformer_server.daemon.protocol import DaemonError


class BrokenWriter:
    """A stream writer whose peer has gone (unit-test double: the race is too narrow to hit on a real socket)."""

    def write(self, data: bytes) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


async def test_a_failed_send_does_not_leave_a_future_exception_unretrieved():
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    client = DaemonClient(asyncio.StreamReader(), BrokenWriter())
    try:
        await client.request("status", {}, timeout=5)
    except DaemonError as e:
        code = e.code
    assert code == P.CONNECTION_LOST
    await client.close()
    del client
    gc.collect()
    await asyncio.sleep(0)
    assert not [c for c in reported if "never retrieved" in c.get("message", "")], reported

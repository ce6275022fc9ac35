"""What a worker serves in front of BentoML's app: /recommend's own lane, and a loop that
accepts one connection per wake-up so the workers sharing a socket take turns."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from serving.front_door import Lanes, accept_one_at_a_time


def pending_after_one_wake_up(one_at_a_time: bool) -> int:
    """Connections left in the listen queue after the loop handled one ready event of a socket
    with three pending connections."""
    loop = asyncio.SelectorEventLoop()
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    listener.setblocking(False)
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    try:
        if one_at_a_time:
            assert accept_one_at_a_time(loop) and not accept_one_at_a_time(loop)
        loop._accept_connection(asyncio.Protocol, listener, None, None, 2048)
        loop.run_until_complete(asyncio.sleep(0))
        pending = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                listener.accept()[0].close()
                pending += 1
        return pending
    finally:
        for client in clients:
            client.close()
        listener.close()
        loop.close()


def test_a_worker_takes_one_pending_connection_per_wake_up():
    assert pending_after_one_wake_up(one_at_a_time=False) == 0  # asyncio's own: all of them
    assert pending_after_one_wake_up(one_at_a_time=True) == 2


@pytest.mark.parametrize(
    ("scope", "served_by"),
    [({"type": "http", "path": "/recommend"}, "lane"),
     ({"type": "http", "path": "/recommend/"}, "bentoml"),
     ({"type": "http", "path": "/profile"}, "bentoml"),
     ({"type": "lifespan"}, "bentoml")],
)  # fmt: skip
def test_only_the_lanes_path_takes_the_lane(scope, served_by):
    seen = []

    def app(name):
        async def answer(scope, receive, send):
            seen.append(name)

        return answer

    asyncio.run(Lanes(app("bentoml"), {"/recommend": app("lane")})(scope, None, None))
    assert seen == [served_by]

"""What a BentoML worker serves: the access middleware, then POST /recommend's own lane, then
BentoML's app for every other route.

BentoML's app runs each request through its middleware stack (OpenTelemetry, timeout, concurrency,
service context, Starlette's error and exception middlewares and its router with the mounts):
measured in process (benchmarks/serve.py's notes in the README), a third of a /recommend's time
in a worker, as much as the answer. Apps call /recommend on every screen and it needs none of
it (no trace, no BentoML context, its own error answers, no await while answering), so its path
goes straight to its handler (serving/api_app.py). What it keeps: the access middleware (host,
key and role, bounded body read in bounded time, security headers, metrics by route), its
400/404/503 answers and the audit; a failure is a JSON 500 from the access middleware.

`bentoml.service(service_class=FrontDoorService)` is BentoML's own hook for a service class;
`to_asgi` is what BentoML's worker hands to uvicorn. Every other route, BentoML's own included,
is served by BentoML's app as before, behind the same access middleware.

The workers share one listening socket (circus binds it, each worker's uvicorn serves its fd),
and asyncio accepts up to the listen backlog (BentoML: 2048) connections each time the socket is
ready: the worker that wakes first took every pending connection, so a client's keep-alive
connections all landed on one worker while the other idled (`ss -tnp`: all 10 of wrk's on one
pid). `accept_one_at_a_time` makes each worker's loop accept one connection per wake-up, so
the workers take turns; the listen backlog is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import attrs
import bentoml

Wrap = Callable[[Any], Any]


@attrs.define
class FrontDoorService(bentoml.Service):
    """A BentoML service whose workers serve BentoML's app wrapped by `front` (outermost last)."""

    front: list[Wrap] = attrs.field(factory=list, init=False)

    def to_asgi(self, is_main: bool = True) -> Any:
        app = super().to_asgi(is_main=is_main)
        for wrap in self.front:
            app = wrap(app)
        return SharedSocket(app)


class SharedSocket:
    """The worker's app; at start-up (the lifespan, on uvicorn's loop before it listens) the
    loop is set to accept one connection per wake-up."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            accept_one_at_a_time(asyncio.get_running_loop())
        await self.app(scope, receive, send)


def accept_one_at_a_time(loop: asyncio.AbstractEventLoop) -> bool:
    """Make a selector event loop accept one pending connection each time a listening socket is
    ready, instead of up to its backlog; whether it could (uvloop has no such method: unchanged).

    asyncio's `_accept_connection(factory, sock, sslcontext, server, backlog, ...)` loops
    `backlog` times; it is looked up on the loop each time a listening socket is ready.
    """
    accept = getattr(loop, "_accept_connection", None)
    if accept is None or getattr(accept, "one_at_a_time", False):
        return False

    def one(protocol_factory, sock, sslcontext=None, server=None, backlog=100, *args, **kwargs):
        return accept(protocol_factory, sock, sslcontext, server, 1, *args, **kwargs)

    one.one_at_a_time = True
    loop._accept_connection = one  # noqa: SLF001 - see the docstring
    return True


class Lanes:
    """HTTP requests to one of `lanes`' paths go to that lane's app; everything else (other
    paths, lifespan) to `app`, BentoML's."""

    def __init__(self, app: Any, lanes: dict[str, Any]) -> None:
        self.app, self.lanes = app, dict(lanes)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        lane = self.lanes.get(scope["path"]) if scope["type"] == "http" else None
        await (lane or self.app)(scope, receive, send)

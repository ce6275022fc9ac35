"""Audience queries run here: a small thread pool of their own, never /recommend's threads,
with a time budget (a query past it is answered 400) and a bound on queries in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from portrait.errors import PortraitError


class AudienceBusy(PortraitError):
    """Every slot of the pool is taken (answered 429: try again in a moment)."""


class AudienceTooSlow(PortraitError):
    """A query ran past the time budget (answered 400: narrow the query)."""


class AudiencePool:
    """`await pool.run(fn, *args)`: fn on the pool, within `budget` seconds, at most
    `workers` running and as many waiting; a query past its budget keeps its slot until it
    really ends (a thread cannot be stopped), so hostile queries cannot pile up."""

    def __init__(self, *, workers: int, budget: float) -> None:
        self.budget = budget
        self._executor = ThreadPoolExecutor(max(1, workers), thread_name_prefix="audience")
        self._slots = asyncio.Semaphore(2 * max(1, workers))  # bound to a loop at first use

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args) on the pool; AudienceBusy or AudienceTooSlow instead of waiting forever."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self.budget)
        except TimeoutError as exc:
            raise AudienceBusy("audience queries are all busy; try again in a moment") from exc
        loop = asyncio.get_running_loop()
        future = self._executor.submit(fn, *args)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._slots.release))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.budget)
        except TimeoutError as exc:
            raise AudienceTooSlow(
                f"the query took longer than {self.budget:g} s; narrow it (fewer `did` "
                "conditions or a shorter window) and try again"
            ) from exc

"""One worker's served state, kept at its server's current generation (serving/generations.py).

Start-up loads the latest generation (or the run the server was started with) in the background;
a watcher thread loads each newer generation; `reload` loads a run with the current champions,
publishes it as the next generation and waits, bounded, until every worker serves it. A load
that fails (or fails its smoke prediction) leaves the old state serving, on every worker.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portrait.settings import Settings
from serving.answers import smoke_check
from serving.generations import Generation, Generations, ReloadBusy, pinned_versions
from serving.runs import scrub
from serving.state import ServingState, StateHolder, load_state

log = logging.getLogger("portrait.service")
WATCH_SECONDS = 0.5


class WorkerState:
    """The state this worker answers from and the generation it belongs to."""

    def __init__(
        self, *, settings: Settings, run_dir: Path, generations: Generations, worker: int,
        workers: int, on_loaded: Callable[[ServingState], Any] = lambda state: None,
    ) -> None:  # fmt: skip
        self.settings, self.run_dir, self.generations = settings, run_dir, generations
        self.worker, self.workers, self.on_loaded = worker, workers, on_loaded
        self.holder = StateHolder()
        self.generation = 0
        self.last_load = "loading"
        self._lock = threading.Lock()  # one load at a time in this worker: a run is GBs
        self._stop = threading.Event()

    @property
    def current(self) -> ServingState | None:
        """The state requests read now (None until the first load succeeded)."""
        return self.holder.current

    def start(self) -> None:
        """Load the current generation (or the start-up run), then follow newer generations."""
        threading.Thread(target=self._follow, name="portrait-generations", daemon=True).start()

    def stop(self) -> None:
        """Stop following generations (tests)."""
        self._stop.set()

    def _follow(self) -> None:
        with self._lock:
            published = self.generations.current()
            self._load(Path(published.run_dir) if published else self.run_dir, published)
        while not self._stop.wait(WATCH_SECONDS):
            self.follow_once()

    def follow_once(self) -> bool:
        """Load the published generation when it is newer than this worker's; whether it did."""
        published = self.generations.changed()
        if published is None:
            return False
        with self._lock:
            if published.number <= self.generation:
                return False
            return self._load(Path(published.run_dir), published)[0]

    def reload(self, run_dir: Path) -> tuple[bool, str, int]:
        """Load `run_dir` with the current champions; when it serves, publish it to every worker.
        Returns (loaded, reason, generation); raises ReloadBusy while any worker reloads."""
        with self.generations.reloading():
            if not self._lock.acquire(blocking=False):
                raise ReloadBusy("a reload is already running; try again when it has finished")
            try:
                ok, reason = self._load(run_dir, None)
                if not ok:
                    return False, reason, self.generation
                published = self.generations.publish(self.run_dir, self.current.model_version)
                self._served(published.number)
                return True, reason, published.number
            finally:
                self._lock.release()

    def ready(self) -> bool:
        """This worker serves a state and every worker of the server has loaded one (a request
        may reach any worker: ready before the last one loaded, some answers were 503)."""
        return self.current is not None and self.generations.workers_at(0) >= self.workers

    def wait_for_workers(self, generation: int, *, seconds: float) -> int:
        """How many workers serve `generation`, waiting up to `seconds` for all of them."""
        deadline = time.monotonic() + seconds
        while (count := self.generations.workers_at(generation)) < self.workers:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        return count

    def _load(self, run_dir: Path, published: Generation | None) -> tuple[bool, str]:
        """Build, smoke-test and swap in a state (the caller holds the lock); on failure keep
        the old one. `published` pins the run's model versions to those its first worker loaded."""
        try:
            versions = pinned_versions(published.model_version) if published else None
            state = load_state(run_dir, self.settings, versions=versions)
            smoke_check(state)
        except Exception as exc:  # any failure must leave the serving state untouched
            self.last_load = f"failed: {type(exc).__name__}: {scrub(str(exc))}"
            log.warning("worker %d loading run %s %s; the previous state keeps serving",
                        self.worker, Path(run_dir).name, self.last_load)  # fmt: skip
            log.debug("loading %s failed", run_dir, exc_info=True)
            return False, self.last_load
        self.holder.swap(state)
        freeze_heap()
        self.run_dir = state.run_dir
        self.last_load = f"loaded run {state.run_dir.name} (models {state.model_version})"
        log.info("worker %d %s", self.worker, self.last_load)
        self._served(published.number if published else self.generation)
        self.on_loaded(state)
        return True, self.last_load

    def _served(self, generation: int) -> None:
        """Record (in this object and for the other workers) the generation served now."""
        self.generation = generation
        self.generations.report(self.worker, generation, self.current.model_version)


def freeze_heap() -> None:
    """Keep what is alive now (the served state: ~400k objects for a 5k-customer run) out of the
    cycle collector's sight: a full collection over them took 0.3-0.8 s, a pause of every
    request in flight, every few thousand requests. No full collection here either (it paused
    the worker 0.6 s at each reload, over 2 s on the busy machine: wrk's timeouts): the old
    state is freed by reference counting when it is swapped out (measured: four reloads kept
    419k frozen objects, and a full collection after them found 30 unreachable)."""
    gc.collect(1)  # the young generations only: what loading left
    gc.freeze()

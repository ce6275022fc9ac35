"""Which run and models every worker of one server serves: a generation stamp in the server's
state directory, so that `/admin/reload` (and the champions it loads) reaches every worker.

The worker that takes a reload loads and smoke-tests the new state, then publishes generation
N+1 (the run and the exact model versions it loaded); every other worker notices the stamp
(one `stat` every half second) and loads the same run and versions, keeping its old state
serving until the new one passed its own smoke test. Each worker reports what it serves, so the
reload can answer how many workers moved. A worker that (re)starts loads the current generation.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from portrait.errors import PortraitError

STATE_DIR_ENV = "PORTRAIT_STATE_DIR"
_VERSION = re.compile(r"^churn:v(?P<churn>[^,]+),conversion:(?:v(?P<conversion>.+)|none)$")


class ReloadBusy(PortraitError):
    """Another worker of this server is reloading right now."""


@dataclass(frozen=True)
class Generation:
    """One published state: its number, the run's directory and the models' versions."""

    number: int
    run_dir: str
    model_version: str


def state_dir_path(env: Mapping[str, str]) -> Path:
    """The directory this server's workers share: PORTRAIT_STATE_DIR (`portrait serve` makes
    one per start), else one per `bentoml serve` process (the workers' parent)."""
    named = env.get(STATE_DIR_ENV)
    return Path(named) if named else Path(tempfile.gettempdir()) / f"portrait-{os.getppid()}"


def state_dir(env: Mapping[str, str]) -> Path:
    """`state_dir_path`, made (0700) when missing."""
    path = state_dir_path(env)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def pinned_versions(model_version: str) -> dict[str, str | None]:
    """The registry versions in a state's model_version ("churn:v3,conversion:v2")."""
    match = _VERSION.match(model_version)
    if match is None:
        raise PortraitError(f"model version {model_version!r} is not churn:vN,conversion:vM|none")
    return {"churn": match["churn"], "conversion": match["conversion"]}


class Generations:
    """The stamp file, the reload lock and the workers' reports in one state directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "generation.json"
        self._seen: tuple[int, int] | None = None

    def current(self) -> Generation | None:
        """The latest published generation (None before the first reload)."""
        try:
            return Generation(**json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def changed(self) -> Generation | None:
        """The current generation when the stamp changed since the last call, else None."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_ino)
        if stamp == self._seen:
            return None
        self._seen = stamp
        return self.current()

    @contextlib.contextmanager
    def reloading(self) -> Iterator[None]:
        """Hold the server-wide reload lock (ReloadBusy when another worker holds it)."""
        with open(self.directory / "reload.lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise ReloadBusy(
                    "a reload is already running; try again when it has finished"
                ) from exc
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def publish(self, run_dir: Path, model_version: str) -> Generation:
        """Stamp generation N+1 (hold `reloading()`); every worker loads it."""
        previous = self.current()
        generation = Generation(
            (previous.number if previous else 0) + 1, str(run_dir), model_version
        )
        _write_json(self.path, asdict(generation))
        return generation

    def report(self, worker: int, generation: int, model_version: str) -> None:
        """Record what worker `worker` serves now."""
        _write_json(self.directory / f"worker-{worker}.json",
                    {"generation": generation, "model_version": model_version, "pid": os.getpid()})  # fmt: skip

    def workers_at(self, generation: int) -> int:
        """How many workers report serving `generation` or a later one."""
        count = 0
        for path in self.directory.glob("worker-*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                count += json.loads(path.read_text(encoding="utf-8"))["generation"] >= generation
        return count


def _write_json(path: Path, payload: dict) -> None:
    """Replace `path` atomically, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(tmp, path)

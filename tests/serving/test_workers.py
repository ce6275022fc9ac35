"""Several workers, one server: the reload generation every worker follows (same run, same model
versions), the server-wide reload lock, and page sessions every worker sees; in process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from portrait.errors import PortraitError
from portrait.settings import load_settings
from serving import worker_state
from serving.generations import Generations, ReloadBusy, pinned_versions, state_dir
from serving.sessions import SessionStore
from serving.worker_state import WorkerState


@dataclass(frozen=True)
class FakeState:
    run_dir: Path
    model_version: str


@pytest.fixture
def loads(monkeypatch):
    """load_state replaced by a recorder: run dir -> the versions each load pinned; a run
    named "broken" fails to load; the champions are churn v7, conversion v2."""
    calls: list[tuple[str, dict | None]] = []

    def load_state(run_dir, settings, *, versions=None):
        calls.append((Path(run_dir).name, versions))
        if Path(run_dir).name == "broken":
            raise PortraitError("broken run")
        pair = versions or {"churn": "7", "conversion": "2"}
        conversion = f"v{pair['conversion']}" if pair["conversion"] else "none"
        return FakeState(Path(run_dir), f"churn:v{pair['churn']},conversion:{conversion}")

    monkeypatch.setattr(worker_state, "load_state", load_state)
    monkeypatch.setattr(worker_state, "smoke_check", lambda state: None)
    return calls


def worker(tmp_path: Path, index: int) -> WorkerState:
    return WorkerState(settings=load_settings(None, {}), run_dir=tmp_path / "run-a",
                       generations=Generations(tmp_path / "shared"), worker=index, workers=2)  # fmt: skip


def started(tmp_path: Path, index: int) -> WorkerState:
    """A worker after its start-up load (run in the caller's thread, not the watcher's)."""
    w = worker(tmp_path, index)
    with w._lock:
        published = w.generations.current()
        w._load(Path(published.run_dir) if published else w.run_dir, published)
    return w


@pytest.fixture
def shared(tmp_path):
    (tmp_path / "shared").mkdir()
    return tmp_path


def test_a_reload_reaches_every_worker_with_the_same_models(shared, loads):
    one, two = started(shared, 1), started(shared, 2)
    assert one.generation == two.generation == 0
    ok, _, generation = one.reload(shared / "run-b")
    assert ok and generation == 1 and one.current.run_dir.name == "run-b"
    assert one.wait_for_workers(1, seconds=0) == 1  # the other worker has not looked yet
    assert two.follow_once() is True
    assert two.current.run_dir.name == "run-b" and two.generation == 1
    assert loads[-1] == ("run-b", {"churn": "7", "conversion": "2"})  # pinned, not re-resolved
    assert two.current.model_version == one.current.model_version
    assert one.wait_for_workers(1, seconds=0) == 2
    assert two.follow_once() is False and one.follow_once() is False  # nothing newer


def test_ready_once_every_worker_has_loaded(shared, loads):
    one, two = started(shared, 1), worker(shared, 2)
    assert not one.ready() and not two.ready()  # the second worker is still loading
    two = started(shared, 2)
    assert one.ready() and two.ready()
    one.reload(shared / "run-b")
    assert one.ready() and two.ready()  # a reload in flight is no reason to stop serving


def test_a_restarted_worker_loads_the_current_generation(shared, loads):
    one = started(shared, 1)
    one.reload(shared / "run-b")
    late = started(shared, 2)
    assert late.current.run_dir.name == "run-b" and late.generation == 1


def test_a_failed_reload_publishes_nothing_and_keeps_serving(shared, loads):
    one, two = started(shared, 1), started(shared, 2)
    ok, reason, generation = one.reload(shared / "broken")
    assert not ok and "broken run" in reason and generation == 0
    assert one.current.run_dir.name == "run-a" and two.follow_once() is False


def test_a_worker_that_cannot_load_a_generation_keeps_its_state(shared, loads):
    one, two = started(shared, 1), started(shared, 2)
    one.generations.publish(shared / "broken", "churn:v7,conversion:none")
    assert two.follow_once() is False
    assert two.current.run_dir.name == "run-a" and two.last_load.startswith("failed")


def test_one_reload_at_a_time_across_workers(shared, loads):
    one, two = started(shared, 1), started(shared, 2)
    with one.generations.reloading(), pytest.raises(ReloadBusy):
        two.reload(shared / "run-b")


def test_generation_stamps_are_read_once_and_count_up(tmp_path):
    generations = Generations(tmp_path)
    assert generations.current() is None and generations.changed() is None
    first = generations.publish(tmp_path / "r1", "churn:v1,conversion:none")
    assert generations.changed() == first and generations.changed() is None
    assert generations.publish(tmp_path / "r2", "churn:v2,conversion:v1").number == 2


def test_pinned_versions_read_a_state_model_version():
    assert pinned_versions("churn:v3,conversion:v12") == {"churn": "3", "conversion": "12"}
    assert pinned_versions("churn:v3,conversion:none") == {"churn": "3", "conversion": None}
    with pytest.raises(PortraitError, match="churn:vN"):
        pinned_versions("latest")


def test_state_dir_is_private_and_named_by_the_environment(tmp_path):
    path = state_dir({"PORTRAIT_STATE_DIR": str(tmp_path / "s")})
    assert path == tmp_path / "s" and (path.stat().st_mode & 0o777) == 0o700


def test_page_sessions_are_shared_by_every_worker(tmp_path):
    one = SessionStore(minutes=1, path=tmp_path / "sessions.sqlite3")
    two = SessionStore(minutes=1, path=tmp_path / "sessions.sqlite3")
    token, session = one.create("k-staff", now=1000.0)
    assert two.get(token, now=1001.0) == session
    assert token not in (tmp_path / "sessions.sqlite3").read_bytes().decode("latin-1")
    assert two.get(token, now=2000.0) is None and one.get(token, now=1001.0) is None  # expired
    token, _ = one.create("k-staff")
    two.drop(token)
    assert one.get(token) is None

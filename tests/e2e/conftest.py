"""A small demo-bank run and a real `portrait serve` on a free local port.

The session fixtures `demo_run` and `server` that use these live in tests/conftest.py, so the
e2e and UI tests share one run and one server (each start costs minutes on 2 cores)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

CUSTOMERS = 2500
AS_OF = "2025-11-01"
PORTRAIT = [sys.executable, "-m", "portrait.cli"]


@dataclass(frozen=True)
class DemoRun:
    """Where the demo data, run directory and MLflow store of the session live."""

    data_dir: Path
    run_dir: Path
    tracking_uri: str

    @property
    def sets(self) -> list[str]:
        """The --set arguments every command of the session uses."""
        return ["--set", f"tracking.tracking_uri={self.tracking_uri}", "--set", "models.n_trials=2"]


def build_demo_run(base: Path) -> DemoRun:
    """Generate the demo bank and run the pipeline into `base` once (later calls reuse it)."""
    demo = DemoRun(base / "data", base / "run", f"sqlite:///{base / 'mlflow.db'}")
    if (demo.run_dir / "quality.json").is_file():
        return demo
    base.mkdir(parents=True, exist_ok=True)
    _check([*PORTRAIT, "demo-data", str(demo.data_dir), "--customers", str(CUSTOMERS)], base)
    run = ["run", "--data", str(demo.data_dir), "--as-of", AS_OF, "--out", str(demo.run_dir)]
    _check([*PORTRAIT, *run, *demo.sets], base)
    return demo


def _check(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")


def free_port() -> int:
    """A port nobody listens on at 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, *, timeout: float = 150.0) -> None:
    """Poll /readyz until 200; fail with the server's log when it exits or never gets ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server at {url} not ready after {timeout:.0f}s")


ROLES = ("app", "staff", "marketer", "admin")
ROUTE_ROLE = {"/recommend": "app", "/profile": "staff", "/audience": "marketer",
              "/admin/reload": "admin", "/metrics": "admin"}  # fmt: skip


@dataclass(frozen=True)
class Server:
    """A running service: its base URL, the run it serves, its audit log and one key per role
    (and "pages": one key with staff, marketer and admin for the browser)."""

    url: str
    demo: DemoRun
    audit_log: Path
    keys: dict[str, str]
    keys_file: Path

    def headers(self, role: str) -> dict[str, str]:
        """The Authorization header of the session's key for `role`."""
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def auth(self, path: str) -> dict[str, str]:
        """The Authorization header of the role that `path` needs."""
        return self.headers(ROUTE_ROLE.get(path, "pages"))


def stop(process: subprocess.Popen) -> None:
    """Stop a server started in its own process group: TERM, then KILL after 20 s."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def make_keys(path: Path) -> dict[str, str]:
    """A key file with one key per role and a page key (staff, marketer, admin)."""
    from serving.keys import add_key

    keys = {role: add_key(path, f"test-{role}", roles=[role]) for role in ROLES}
    keys["pages"] = add_key(path, "test-pages", roles=["staff", "marketer", "admin"])
    return keys


def serve_demo_run(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`portrait serve --run RUN --port P` in its own process group, stopped at the end."""
    port = free_port()
    audit = tmp_path_factory.mktemp("audit") / "exclusions.jsonl"
    keys_file = audit.parent / "keys.json"
    keys = make_keys(keys_file)
    log = (tmp_path_factory.getbasetemp() / "server.log").open("w")
    serve = [
        "serve",
        "--run",
        str(demo_run.run_dir),
        "--port",
        str(port),
        "--audit-log",
        str(audit),
        "--keys",
        str(keys_file),
    ]
    process = subprocess.Popen(
        [*PORTRAIT, *serve, *demo_run.sets],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=demo_run.run_dir.parent,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield Server(url, demo_run, audit, keys, keys_file)
    finally:
        stop(process)
        log.close()

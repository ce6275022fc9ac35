"""`portrait serve`: find the run, pass it and the settings to `bentoml serve` through the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from portrait.errors import PortraitError
from portrait.settings import Settings
from serving.access import INSECURE_ENV, KEYS_ENV
from serving.generations import STATE_DIR_ENV
from serving.keys import read_keys
from serving.runs import latest_run_dir
from serving.state import AUDIT_ENV, RUN_ENV, SETTINGS_ENV, run_manifest
from training.manifest import read_manifest

SERVICE = "serving.service:Portrait"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def serve_environment(
    run_dir: Path, *, config: Path | None, overrides: dict[str, str], audit_log: Path | None,
    keys: Path | None = None,
) -> dict[str, str]:  # fmt: skip
    """The environment the service reads once at start-up: run dir, settings, audit log, keys
    (no keys: every route open, which `serve` allows only with --insecure-local)."""
    env = dict(os.environ)
    # One OpenMP thread per LightGBM call: a request predicts a few rows, where OpenMP's thread
    # start-up and spinning cost more than they save (17 ms instead of 0.3 ms per call on 2 busy
    # cores); concurrent requests are the parallelism.
    env.setdefault("OMP_NUM_THREADS", "1")
    env[RUN_ENV] = str(Path(run_dir).resolve())
    env[SETTINGS_ENV] = json.dumps(
        {"config": str(config) if config else None, "overrides": overrides}
    )
    if audit_log is not None:
        env[AUDIT_ENV] = str(Path(audit_log).resolve())
    env.pop(KEYS_ENV, None)
    env.pop(INSECURE_ENV, None)
    if keys is not None:
        env[KEYS_ENV] = str(Path(keys).resolve())
    else:
        env[INSECURE_ENV] = "1"
    return env


def check_keys(keys: Path | None, *, insecure_local: bool, host: str) -> Path | None:
    """The key file to serve with; refuse to start without one unless --insecure-local (local only)."""
    if keys is not None:
        if not read_keys(keys):
            raise PortraitError(
                f"the key file {keys} holds no key; add one with "
                f"`portrait keys add NAME --role ROLE --keys {keys}`"
            )
        return keys
    if not insecure_local:
        raise PortraitError(
            "no API keys: pass --keys FILE (make one with `portrait keys add NAME --role admin "
            "--keys FILE`), or --insecure-local to serve everything open on 127.0.0.1 only"
        )
    if host != "127.0.0.1":
        raise PortraitError(f"--insecure-local binds 127.0.0.1 only, not {host}")
    return None


def serve_command(host: str, port: int) -> list[str]:
    """The `bentoml serve` command line for this interpreter."""
    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port)]


def serve(
    *,
    run_dir: Path | None,
    settings: Settings,
    config: Path | None,
    overrides: dict[str, str],
    host: str,
    port: int,
    audit_log: Path | None,
    keys: Path | None = None,
    insecure_local: bool = False,
) -> int:
    """Run the service in the foreground until interrupted; return its exit code."""
    from training.tracking import tracking_uri

    keys = check_keys(
        keys or (Path(settings.serving.keys_file) if settings.serving.keys_file else None),
        insecure_local=insecure_local, host=host,
    )  # fmt: skip
    run_dir = run_dir or latest_run_dir(tracking_uri(settings.tracking))
    run_manifest(run_dir)  # fail here, with a clear message, rather than inside the server
    read_manifest(run_dir)  # the service loads only runs `portrait run` wrote a manifest for
    if not 0 < port < 65536:
        raise PortraitError(f"--port must be between 1 and 65535, got {port}")
    env = serve_environment(
        run_dir, config=config, overrides=overrides, audit_log=audit_log, keys=keys
    )
    access = f"keys from {keys}" if keys else "NO KEYS (--insecure-local): every route open"
    print(f"serving {Path(run_dir).resolve()} on http://{host}:{port}; {access}", file=sys.stderr)
    # The workers' shared directory (reload generations, page sessions), gone when serving ends.
    with tempfile.TemporaryDirectory(prefix="portrait-serve-") as shared:
        env[STATE_DIR_ENV] = shared
        return subprocess.call(serve_command(host, port), env=env, cwd=PROJECT_ROOT)

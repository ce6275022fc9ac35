"""The one module that talks to MLflow: store location, runs, logging and fingerprints."""

from __future__ import annotations

import hashlib
import logging
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from portrait.settings import TrackingSettings

DEFAULT_STORE = "mlflow.db"


def tracking_uri(settings: TrackingSettings, *, root: Path | None = None) -> str:
    """The configured tracking URI, or a local sqlite store `mlflow.db` in `root` (the working directory)."""
    if settings.tracking_uri:
        return settings.tracking_uri
    root = (root or Path.cwd()).resolve()
    return f"sqlite:///{root / DEFAULT_STORE}"


def ui_command(uri: str) -> str:
    """The command a person runs to browse the runs."""
    return f"mlflow ui --backend-store-uri {uri}"


def configure(settings: TrackingSettings, *, root: Path | None = None) -> str:
    """Point MLflow at the store and make sure the experiment exists with artifacts beside a local store."""
    uri = tracking_uri(settings, root=root)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(settings.experiment) is None:
        location = None
        if uri.startswith("sqlite:///"):
            location = (Path(uri.removeprefix("sqlite:///")).parent / "mlruns").resolve().as_uri()
        mlflow.create_experiment(settings.experiment, artifact_location=location)
    mlflow.set_experiment(settings.experiment)
    return uri


@contextmanager
def start_run(
    name: str, *, nested: bool = False, tags: dict[str, str] | None = None
) -> Iterator[Any]:
    """An MLflow run; nested runs sit under the active one (Optuna trials, stages)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(run_name=name, nested=nested, tags=tags) as run:
            yield run


def log_params(params: dict[str, Any]) -> None:
    """Log parameters (values stringified, long values cut to MLflow's limit)."""
    mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})


def log_metrics(metrics: dict[str, float], *, prefix: str = "") -> None:
    """Log finite numeric metrics; None and NaN are skipped, not logged as zero."""
    clean = {
        f"{prefix}{k}": float(v)
        for k, v in metrics.items()
        if v is not None and isinstance(v, int | float) and v == v
    }
    mlflow.log_metrics(clean)


def log_artifact(path: Path, *, folder: str | None = None) -> None:
    """Attach a file to the active run."""
    mlflow.log_artifact(str(path), artifact_path=folder)


def log_dict(data: dict[str, Any] | list[Any], name: str) -> None:
    """Attach a JSON document to the active run."""
    mlflow.log_dict(data, name)


def log_figure(figure: Any, name: str) -> None:
    """Attach a matplotlib figure to the active run."""
    mlflow.log_figure(figure, name)


def data_fingerprint(tables: dict[str, pd.DataFrame]) -> str:
    """A stable hash of every table's content: the same data gives the same fingerprint."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        frame = tables[name]
        digest.update(name.encode())
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(_rows_digest(frame))
    return digest.hexdigest()[:16]


_ROWS_DIGESTS: dict[int, bytes] = {}
HASH_ROWS = 2_000_000  # rows hashed at once by the data fingerprint (bounded memory)


def _rows_digest(frame: pd.DataFrame) -> bytes:
    """SHA-256 of the frame's row hashes, once per frame object: a run logs the fingerprint of
    the same validated tables with each model and with the run (14 s each at 38M events)."""
    key = id(frame)
    if key not in _ROWS_DIGESTS:
        digest = hashlib.sha256()
        # a block of rows at a time: hashing text makes a Python object per value (3-4 GB for
        # a column of 53M events at once); a row's hash depends on that row only, so the
        # digest is the same as over the whole frame
        for start in range(0, len(frame), HASH_ROWS):
            part = frame.iloc[start : start + HASH_ROWS]
            digest.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        _ROWS_DIGESTS[key] = digest.digest()
        weakref.finalize(frame, _ROWS_DIGESTS.pop, key, None)  # forgotten with the frame
    return _ROWS_DIGESTS[key]


def log_artifacts(directory: Path, *, folder: str | None = None) -> None:
    """Attach every file of a directory to the active run (e.g. a saved rule base)."""
    mlflow.log_artifacts(str(directory), artifact_path=folder)


def set_tags(tags: dict[str, str]) -> None:
    """Tag the active run (values cut to MLflow's limit)."""
    mlflow.set_tags({k: str(v)[:5000] for k, v in tags.items()})

"""Append-only JSON-lines logs that rotate, are readable by the service's user only (0600),
and never fail an answer: a line that cannot be written (full disk, gone directory) is counted
in /metrics (`portrait_log_write_failures_total{log=...}`) and dropped."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from serving.http_metrics import count_log_failure


class PrivateRotatingHandler(RotatingFileHandler):
    """A RotatingFileHandler whose files are created 0600 and whose failures are counted."""

    def __init__(self, path: Path, *, log: str, max_bytes: int, backups: int) -> None:
        self.log_name = log
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, delay=True,
                         encoding="utf-8")  # fmt: skip

    def _open(self):  # noqa: ANN202 - the stdlib's signature
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - stdlib name
        count_log_failure(self.log_name)
        if self.stream is not None:  # reopen on the next line (the disk may have room again)
            with contextlib.suppress(OSError):
                self.stream.close()
            self.stream = None


class JsonLinesLog:
    """One JSON object per line in `path`, rotated at `max_bytes` keeping `backups` files."""

    def __init__(self, path: Path | None, *, log: str, max_bytes: int, backups: int) -> None:
        self.path = None if path is None else Path(path)
        self.log = log
        self._logger = logging.getLogger(f"portrait.log.{log}.{id(self)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        if self.path is not None:
            handler = PrivateRotatingHandler(self.path, log=log, max_bytes=max_bytes,
                                             backups=backups)  # fmt: skip
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record; never raises."""
        if self.path is None:
            return
        try:
            self._logger.info(json.dumps(record, default=str, ensure_ascii=False))
        except Exception:  # noqa: BLE001 - a log line must never fail the answer it describes
            count_log_failure(self.log)

    def close(self) -> None:
        """Close the files (tests)."""
        for handler in list(self._logger.handlers):
            handler.close()
            self._logger.removeHandler(handler)


def record_access(log: JsonLinesLog | None, scope: dict, action: str, **fields: Any) -> None:
    """Who (the key's name) did what to which customer or audience: one access-log line."""
    if log is None:
        return
    principal = scope.get("portrait.principal")
    who = getattr(principal, "name", "unknown")
    at = datetime.now(UTC).isoformat(timespec="seconds")
    log.write({"time": at, "who": who, "action": action, **fields})


class ClientErrorFilter(logging.Filter):
    """BentoML logs every rejected request body with a traceback that quotes the input; for a
    client error (validation, bad input) keep one line naming the route template and the error
    type, with the traceback only when debug logging is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not _client_error(exc):
            return True
        from serving.routes import route_of

        path = str(record.args[0]) if record.args else ""
        record.msg, record.args = "client error on %s: %s", (
            route_of(path).template, type(exc).__name__,
        )  # fmt: skip
        record.levelno, record.levelname = logging.INFO, "INFO"
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            record.exc_info, record.exc_text = None, None
        return True


def _client_error(exc: BaseException) -> bool:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return True
    code = getattr(getattr(exc, "error_code", None), "value", 500)
    return isinstance(code, int) and 400 <= code < 500


def quiet_client_errors() -> None:
    """Install ClientErrorFilter on BentoML's HTTP loggers (once)."""
    for name in ("bentoml._internal.server.http_app", "_bentoml_impl.server.app"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
            logger.addFilter(ClientErrorFilter())

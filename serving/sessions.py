"""Page sessions: a random token in an HttpOnly, SameSite=Strict cookie, held on the server.

The session remembers the key's name (roles are re-read from the key file on every request, so
a revoked key ends its sessions), a CSRF token bound to the session, and when it expires. The
service's workers share them in a SQLite file in the server's state directory.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

COOKIE = "portrait_session"
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    """A logged-in page visitor: the key's name, the session's CSRF token and its expiry."""

    name: str
    csrf: str
    expires: float


class SessionStore:
    """Sessions by token, oldest dropped first past MAX_SESSIONS, expired ones refused. With a
    `path`, a SQLite file that every worker of the server shares (a page visit may reach any
    worker); only a digest of each token is stored."""

    def __init__(self, *, minutes: int, path: Path | None = None) -> None:
        self.seconds = 60.0 * minutes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path) if path else ":memory:", timeout=10, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, name TEXT NOT NULL,"
                " csrf TEXT NOT NULL, expires REAL NOT NULL)"
            )

    def create(self, name: str, *, now: float | None = None) -> tuple[str, Session]:
        """A new session for the key `name`: its cookie token and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(name, secrets.token_urlsafe(32), (now or time.time()) + self.seconds)
        with self._lock:
            self._db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                             (_digest(token), session.name, session.csrf, session.expires))  # fmt: skip
            self._db.execute(
                "DELETE FROM sessions WHERE rowid <= (SELECT MAX(rowid) FROM sessions) - ?",
                (MAX_SESSIONS,),
            )
        return token, session

    def get(self, token: str, *, now: float | None = None) -> Session | None:
        """The live session of a cookie token, None when unknown or expired."""
        with self._lock:
            row = self._db.execute(
                "SELECT name, csrf, expires FROM sessions WHERE token = ?", (_digest(token),)
            ).fetchone()
            if row is not None and row[2] < (now or time.time()):
                self._db.execute("DELETE FROM sessions WHERE token = ?", (_digest(token),))
                row = None
        return None if row is None else Session(*row)

    def drop(self, token: str) -> None:
        """End a session (logout)."""
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE token = ?", (_digest(token),))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def cookie_value(headers: dict[str, str], name: str) -> str:
    """The value of cookie `name` in a request's headers ("" when absent or malformed)."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is no cookie
        return ""
    return jar[name].value if name in jar else ""


def hostname(host: str) -> str:
    """The host of a Host header or an Origin's netloc, lower case, without the port."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

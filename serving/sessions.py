"""Page sessions: a random token in an HttpOnly, SameSite=Strict cookie, held on the server.

The session remembers the key's name (roles are re-read from the key file on every request, so
a revoked key ends its sessions), a CSRF token bound to the session, and when it expires. One
service worker holds them in memory (the service runs one worker on purpose; see service.py).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from http.cookies import SimpleCookie

COOKIE = "portrait_session"
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    """A logged-in page visitor: the key's name, the session's CSRF token and its expiry."""

    name: str
    csrf: str
    expires: float


class SessionStore:
    """Sessions by token, oldest dropped first past MAX_SESSIONS, expired ones refused."""

    def __init__(self, *, minutes: int) -> None:
        self.seconds = 60.0 * minutes
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, name: str, *, now: float | None = None) -> tuple[str, Session]:
        """A new session for the key `name`: its cookie token and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(name, secrets.token_urlsafe(32), (now or time.time()) + self.seconds)
        with self._lock:
            self._sessions[token] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return token, session

    def get(self, token: str, *, now: float | None = None) -> Session | None:
        """The live session of a cookie token, None when unknown or expired."""
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expires < (now or time.time()):
                del self._sessions[token]
                session = None
        return session

    def drop(self, token: str) -> None:
        """End a session (logout)."""
        with self._lock:
            self._sessions.pop(token, None)


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

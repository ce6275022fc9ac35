"""Access control for every route, BentoML's own included: an ASGI middleware on the service.

In order, for each HTTP request: the Host header must be an allowed host; a body larger than
the limit is refused (413); the caller is found from `Authorization: Bearer KEY` or, for the
pages under /ui, from the session cookie set by the login page; a missing or wrong key is 401,
a key without the route's role 403 (serving/routes.py). Page forms sent with the session cookie
need the session's CSRF token and a same-origin Origin; API bodies must be JSON. Every answer
carries CSP, X-Frame-Options, nosniff and Referrer-Policy headers, and is counted in /metrics
under its route template. The caller is left in the scope for handlers ("portrait.principal").
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from serving import http_metrics, login
from serving.generations import state_dir_path
from serving.keys import ROLES, KeyStore, Principal
from serving.routes import route_of
from serving.sessions import COOKIE, SessionStore, cookie_value, hostname

log = logging.getLogger("portrait.access")
PRINCIPAL = "portrait.principal"
CSRF = "portrait.csrf"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")  # fmt: skip
REPORT_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
API_POSTS = frozenset({"/recommend", "/profile", "/audience", "/admin/reload"})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
INSECURE = Principal("insecure-local", frozenset(ROLES))


KEYS_ENV = "PORTRAIT_KEYS"
INSECURE_ENV = "PORTRAIT_INSECURE_LOCAL"


@dataclass(frozen=True)
class AccessConfig:
    """What the middleware enforces: the key file (None: --insecure-local), hosts, body limit;
    `state_dir` holds the page sessions every worker shares (None: in this process only); a body
    not received within `body_seconds` is refused (408)."""

    keys_file: Path | None
    allowed_hosts: frozenset[str]
    max_body_bytes: int
    session_minutes: int
    state_dir: Path | None = None
    body_seconds: float = 60.0


def access_config(
    settings: Any, env: Mapping[str, str], *, body_seconds: float = 60.0
) -> AccessConfig:
    """The middleware's configuration: the key file from `portrait serve --keys` (PORTRAIT_KEYS)
    or serving.keys_file; no key file only with PORTRAIT_INSECURE_LOCAL=1 (then all routes open)."""
    serving = settings.serving
    keys = env.get(KEYS_ENV) or serving.keys_file
    insecure = env.get(INSECURE_ENV) == "1" and not keys
    hosts = frozenset(h.strip().lower() for h in serving.allowed_hosts.split(",") if h.strip())
    return AccessConfig(
        keys_file=None if insecure else Path(keys or "/nonexistent/portrait-keys.json"),
        allowed_hosts=hosts,
        max_body_bytes=serving.max_body_bytes,
        session_minutes=serving.session_minutes,
        state_dir=state_dir_path(env),
        body_seconds=body_seconds,
    )


class Refusal(Exception):
    """A request refused before it reaches a handler: status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class AccessControl:
    """The ASGI middleware; `app` is the service's Starlette app."""

    def __init__(self, app: Any, *, config: AccessConfig) -> None:
        self.app, self.config = app, config
        self.keys = KeyStore(config.keys_file) if config.keys_file else None
        shared = None
        if config.state_dir is not None:
            config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            shared = config.state_dir / "sessions.sqlite3"
        self.sessions = SessionStore(minutes=config.session_minutes, path=shared)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, rule = time.perf_counter(), route_of(scope["path"])
        status = [500]
        csp = REPORT_CSP if rule.template == "/ui/report" else CSP

        async def secured_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), *_headers(csp, rule.template)]
            await send(message)

        started_answer = [False]

        async def tracked_send(message: dict) -> None:
            started_answer[0] = started_answer[0] or message["type"] == "http.response.start"
            await secured_send(message)

        try:
            await self.handle(scope, receive, tracked_send, rule)
        except Exception as exc:  # noqa: BLE001 - answer (or finish) cleanly: no dropped connection
            log.error("%s %s failed: %s", scope["method"], rule.template, type(exc).__name__)
            log.debug("traceback", exc_info=True)
            if not started_answer[0]:
                body = json.dumps({"error": "internal error; it was logged", "detail": None})
                await _send(tracked_send, 500, body.encode(), "application/json")
        finally:
            http_metrics.count_request(
                rule.template, scope["method"], status[0], time.perf_counter() - started
            )

    async def handle(self, scope: dict, receive: Any, send: Any, rule: Any) -> None:
        """Check host, size, caller, role and CSRF; then answer or pass on to the app."""
        headers = _header_map(scope)
        try:
            self.check_host(headers)
            body = await self.read_body(headers, receive)
            if rule.roles is None:
                return await self.open_route(scope, rule, headers, body, receive, send)
            principal, session = self.caller(scope, headers)
            if not principal.roles & rule.roles:
                raise Refusal(403, f"the key {principal.name!r} has no role for {rule.template} "
                                   f"(needs {' or '.join(sorted(rule.roles))})")  # fmt: skip
            self.check_form(scope, headers, body, session)
        except Refusal as refusal:
            return await self.refuse(scope, headers, refusal, send)
        scope[PRINCIPAL] = principal
        scope[CSRF] = session.csrf if session else ""
        if rule.template == "/metrics":
            payload, media = http_metrics.exposition()
            return await _send(send, 200, payload, media)
        await self.app(scope, _replay(body, receive), send)

    def check_host(self, headers: dict[str, str]) -> None:
        host = hostname(headers.get("host", ""))
        if host not in self.config.allowed_hosts:
            raise Refusal(400, "this Host is not served; add it to serving.allowed_hosts")

    async def read_body(self, headers: dict[str, str], receive: Any) -> bytes:
        """The whole request body, refused past the size limit (413) or the time limit (408),
        read once and replayed: POST /recommend awaits nothing else (serving/front_door.py), and
        BentoML's timeout bounds its own routes' handlers."""
        limit = self.config.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise Refusal(413, f"the request body is larger than {limit} bytes")
        try:
            async with asyncio.timeout(self.config.body_seconds):
                return await self._read(receive, limit)
        except TimeoutError:
            raise Refusal(
                408, f"the request body took over {self.config.body_seconds:g} s"
            ) from None

    async def _read(self, receive: Any, limit: int) -> bytes:
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refusal(400, "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Refusal(413, f"the request body is larger than {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    def caller(self, scope: dict, headers: dict[str, str]) -> tuple[Principal, Any]:
        """The principal of a Bearer key, or of the page session cookie under /ui."""
        if self.keys is None:
            return INSECURE, None
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            found = self.keys.lookup(key.strip())
            if found is None:
                raise Refusal(401, "the API key is unknown or revoked")
            return found, None
        if headers.get("authorization"):
            raise Refusal(401, "use `Authorization: Bearer <key>`")
        token = cookie_value(headers, COOKIE) if scope["path"].startswith("/ui") else ""
        session = self.sessions.get(token) if token else None
        roles = self.keys.roles_of(session.name) if session else None
        if session is None or roles is None:
            raise Refusal(401, "an API key is needed: `Authorization: Bearer <key>`, "
                               "or log in at /ui/login")  # fmt: skip
        return Principal(session.name, roles), session

    def check_form(self, scope: dict, headers: dict[str, str], body: bytes, session: Any) -> None:
        """JSON bodies for the API; same-origin, CSRF-tokened forms for cookie sessions."""
        if scope["method"] not in UNSAFE:
            return
        origin = headers.get("origin")
        if origin and hostname(urlsplit(origin).netloc) not in self.config.allowed_hosts:
            raise Refusal(403, "cross-site requests are refused (Origin not allowed)")
        if headers.get("sec-fetch-site") == "cross-site":
            raise Refusal(403, "cross-site requests are refused")
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if scope["path"] in API_POSTS and media != "application/json":
            raise Refusal(415, "send the body as JSON (Content-Type: application/json)")
        if session is not None and not _csrf_ok(session.csrf, headers, body, media):
            raise Refusal(403, "the form's CSRF token is missing or stale; reload the page")

    async def open_route(
        self, scope: dict, rule: Any, headers: dict, body: bytes, receive: Any, send: Any
    ) -> None:
        """Health, static files, and the login and logout pages."""
        if rule.template == "/ui/login":
            return await login.login(self, scope, headers, body, send)
        if rule.template == "/ui/logout":
            return await login.logout(self, scope, headers, send)
        await self.app(scope, _replay(body, receive), send)

    async def refuse(self, scope: dict, headers: dict, refusal: Refusal, send: Any) -> None:
        """A JSON error, or the login page for a browser that has no session yet."""
        wants_page = "text/html" in headers.get("accept", "") and scope["method"] == "GET"
        if refusal.status == 401 and wants_page and scope["path"].startswith("/ui"):
            return await login.login_page(self, scope, send, status=401, next_path=scope["path"])
        body = json.dumps({"error": refusal.message, "detail": None}).encode()
        extra = [(b"www-authenticate", b"Bearer")] if refusal.status == 401 else []
        await _send(send, refusal.status, body, "application/json", extra)


def _csrf_ok(expected: str, headers: dict[str, str], body: bytes, media: str) -> bool:
    sent = headers.get("x-csrf-token", "")
    if not sent and media == "application/x-www-form-urlencoded":
        sent = (parse_qs(body.decode("latin-1")).get("csrf_token") or [""])[0]
    return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())


@lru_cache(maxsize=64)
def _headers(csp: str, template: str) -> tuple[tuple[bytes, bytes], ...]:
    headers = [
        (b"content-security-policy", csp.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),  # no-referrer would make forms send Origin: null
    ]
    if not template.startswith("/ui/static"):
        headers.append((b"cache-control", b"no-store"))
    return tuple(headers)


def _header_map(scope: dict) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _replay(body: bytes, receive: Any) -> Any:
    sent = [False]

    async def replay() -> dict:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send(send: Any, status: int, body: bytes, media: str, extra: list | None = None):
    headers = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})

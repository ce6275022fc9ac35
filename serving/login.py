"""The login page: a key typed once sets an HttpOnly, SameSite=Strict session cookie for /ui.

The login form itself is protected by a double-submit token (a cookie scoped to /ui/login and
the same value in a hidden field), so another site cannot log a visitor in under its own key.
After login the browser goes back to the page it asked for, always a relative /ui/ path.
"""

from __future__ import annotations

import hmac
import html
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from serving.sessions import COOKIE, cookie_value, hostname

if TYPE_CHECKING:
    from serving.access import AccessControl

LOGIN_COOKIE = "portrait_login"
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · Portrait</title><link rel="stylesheet" href="/ui/static/ui.css"></head>
<body><main id="main"><h1>Log in</h1>
<p>{message}</p>
<form method="post" action="/ui/login" class="inline big">
<input type="hidden" name="login_token" value="{token}">
<input type="hidden" name="next" value="{next}">
<label for="key">API key</label>
<input id="key" name="key" type="password" required maxlength="200" autocomplete="off">
<button type="submit">Log in</button>
</form>
<p class="hint">Ask an administrator for a key (<code>portrait keys add NAME --role staff</code>).</p>
</main></body></html>
"""


def safe_next(path: str) -> str:
    """`path` when it is a page of this service (/ui/...), else the overview."""
    parts = urlsplit(path or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui") or "\\" in path:
        return "/ui/"
    if parts.path.startswith(("/ui/login", "/ui/logout", "//")):
        return "/ui/"
    return parts.path


def _cookie_flags(scope: dict, path: str, max_age: int) -> str:
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    return f"; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"


async def login_page(
    access: AccessControl, scope: dict, send: Any, *, status: int = 200, next_path: str = "",
    message: str = "Type your API key to open the pages.",
) -> None:  # fmt: skip
    """The login form, with a fresh double-submit token."""
    token = secrets.token_urlsafe(24)
    body = PAGE.format(
        message=html.escape(message), token=token, next=html.escape(safe_next(next_path))
    ).encode()
    cookie = f"{LOGIN_COOKIE}={token}" + _cookie_flags(scope, "/ui/login", 900)
    await _answer(send, status, body, [(b"set-cookie", cookie.encode())])


async def login(
    access: AccessControl, scope: dict, headers: dict[str, str], body: bytes, send: Any
) -> None:
    """GET: the form. POST: check the token and the key, start a session, go back."""
    if scope["method"] != "POST":
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return await login_page(access, scope, send, next_path=(query.get("next") or [""])[0])
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    origin = headers.get("origin")
    cross = origin and hostname(urlsplit(origin).netloc) not in access.config.allowed_hosts
    expected = cookie_value(headers, LOGIN_COOKIE)
    sent = form.get("login_token", "")
    if cross or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return await login_page(access, scope, send, status=403, message="The login form "
                                "expired or came from another site; try again.")  # fmt: skip
    found = access.keys.lookup(form.get("key", "").strip()) if access.keys is not None else None
    if found is None:
        return await login_page(access, scope, send, status=401, next_path=form.get("next", ""),
                                message="That key is unknown or revoked.")  # fmt: skip
    token, _ = access.sessions.create(found.name)
    max_age = int(access.sessions.seconds)
    cookies = [
        (b"set-cookie", (f"{COOKIE}={token}" + _cookie_flags(scope, "/ui", max_age)).encode()),
        (b"set-cookie", (f"{LOGIN_COOKIE}=" + _cookie_flags(scope, "/ui/login", 0)).encode()),
        (b"location", safe_next(form.get("next", "")).encode()),
    ]
    await _answer(send, 303, b"", cookies)


async def logout(access: AccessControl, scope: dict, headers: dict[str, str], send: Any) -> None:
    """End the session and go to the login page."""
    access.sessions.drop(cookie_value(headers, COOKIE))
    cookie = f"{COOKIE}=" + _cookie_flags(scope, "/ui", 0)
    await _answer(send, 303, b"", [(b"set-cookie", cookie.encode()), (b"location", b"/ui/login")])


async def _answer(send: Any, status: int, body: bytes, extra: list) -> None:
    headers = [(b"content-type", b"text/html; charset=utf-8"),
               (b"content-length", str(len(body)).encode()), *extra]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

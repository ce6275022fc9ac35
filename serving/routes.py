"""Which role each route needs, and the route template metrics label a request with.

Every path the service answers is here, BentoML's own included; a path not listed is an
admin route (BentoML's defaults: /docs.json, /schema.json, /healthz, /, /static_content/...),
so nothing new is open by accident. `None` roles mean open to anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

PAGES = frozenset({"staff", "marketer", "admin"})  # the overview and the run report


@dataclass(frozen=True)
class RouteRule:
    """A path (exact, or a prefix when it ends with /), its template and the roles allowed."""

    path: str
    template: str
    roles: frozenset[str] | None


RULES = (
    RouteRule("/livez", "/livez", None),
    RouteRule("/readyz", "/readyz", None),
    RouteRule("/recommend", "/recommend", frozenset({"app"})),
    RouteRule("/profile", "/profile", frozenset({"staff"})),
    RouteRule("/audience", "/audience", frozenset({"marketer"})),
    RouteRule("/admin/reload", "/admin/reload", frozenset({"admin"})),
    RouteRule("/metrics", "/metrics", frozenset({"admin"})),
    RouteRule("/ui/login", "/ui/login", None),
    RouteRule("/ui/logout", "/ui/logout", None),
    RouteRule("/ui/static/", "/ui/static/{path}", None),
    RouteRule("/ui", "/ui/", PAGES),
    RouteRule("/ui/", "/ui/", PAGES),
    RouteRule("/ui/report", "/ui/report", PAGES),
    RouteRule("/ui/customers", "/ui/customers", frozenset({"staff"})),
    RouteRule("/ui/customers/", "/ui/customers/{customer_id}", frozenset({"staff"})),
    RouteRule("/ui/audiences", "/ui/audiences", frozenset({"marketer"})),
    RouteRule("/ui/audiences/count", "/ui/audiences/count", frozenset({"marketer"})),
    RouteRule("/ui/audiences/download", "/ui/audiences/download", frozenset({"marketer"})),
    RouteRule("/ui/campaigns", "/ui/campaigns", frozenset({"marketer"})),
    RouteRule("/ui/campaigns/", "/ui/campaigns/{campaign_id}", frozenset({"marketer"})),
)
_EXACT = {r.path: r for r in RULES if not r.path.endswith("/") or r.path == "/ui/"}
_PREFIXES = sorted((r for r in RULES if r.path.endswith("/") and r.path != "/ui/"),
                   key=lambda r: -len(r.path))  # fmt: skip
ADMIN = frozenset({"admin"})
KNOWN_ADMIN = ("/", "/docs.json", "/schema.json", "/healthz")


def route_of(path: str) -> RouteRule:
    """The rule of a request path; an unlisted path is an admin route labelled by its kind."""
    rule = _EXACT.get(path)
    if rule is not None:
        return rule
    for prefix in _PREFIXES:
        if path.startswith(prefix.path) and len(path) > len(prefix.path):
            return prefix
    if path in KNOWN_ADMIN:
        return RouteRule(path, path, ADMIN)
    if path.startswith("/static_content/"):
        return RouteRule(path, "/static_content/{path}", ADMIN)
    return RouteRule(path, "other", ADMIN)

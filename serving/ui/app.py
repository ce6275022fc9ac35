"""The Starlette app behind /ui: run overview, Customer 360 and the audience builder.

`create_app(state)` takes a callable returning the ServingState being served (None while the
service is loading), so the pages always read the state the API reads, swaps included.
Everything is rendered on the server with autoescaping Jinja2 templates; the only script is the
audience builder's count-as-you-type. Errors become a plain page with what to do, never a trace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from portrait.errors import PortraitError
from serving.answers import recommend_answer
from serving.audience_pool import AudiencePool
from serving.logs import record_access
from serving.schemas import RecommendRequest
from serving.state import ServingState
from serving.ui import audiences, customer
from serving.ui.charts import asset_trend_svg, trend_summary
from serving.ui.overview import SummaryCache

log = logging.getLogger("portrait.ui")
HERE = Path(__file__).parent
CUSTOMER_ID = re.compile(r"^\S{1,64}$")
ACTIVE = {"overview.html": "overview", "customer.html": "customer", "search.html": "customer",
          "audiences.html": "audiences"}  # fmt: skip
StateFn = Callable[[], ServingState | None]
AuditFn = Callable[[], Any]


class Pages:
    """Request handlers sharing the state provider, the audit, the templates and the run summary."""

    def __init__(
        self, state: StateFn, audit: AuditFn | None, mlflow_command: Callable[[ServingState], str],
        *, access: AuditFn | None, pool: AudiencePool,
    ) -> None:  # fmt: skip
        self.state_fn, self.audit_fn, self.mlflow_command = state, audit, mlflow_command
        self.access_fn, self.pool = access, pool
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.summaries = SummaryCache()

    def render(
        self, request: Request, name: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        state = context.pop("state") if "state" in context else self.state_fn()
        context.setdefault("active", ACTIVE.get(name, ""))
        html = self.env.get_template(name).render(request=request, state=state, **context)
        return HTMLResponse(html, status_code=status)

    def message(
        self, request: Request, status: int, title: str, text: str, **extra: Any
    ) -> HTMLResponse:
        return self.render(request, "message.html", status, title=title, text=text, **extra)

    def served(self, request: Request) -> ServingState | HTMLResponse:
        state = self.state_fn()
        if state is None:
            return self.message(
                request, 503, "Still loading",
                "The service is loading the latest run and models. This page refreshes by itself.",
                refresh=5,
            )  # fmt: skip
        return state

    def overview(self, request: Request) -> Response:
        state = self.served(request)
        if isinstance(state, HTMLResponse):
            return state
        summary = self.summaries.get(state.run_dir)
        return self.render(
            request, "overview.html", state=state, run=summary, mlflow=self.mlflow_command(state)
        )

    def report(self, request: Request) -> Response:
        state = self.served(request)
        if isinstance(state, HTMLResponse):
            return state
        path = state.run_dir / "report.html"
        if not path.is_file():
            return self.message(
                request, 404, "No report", f"The run {state.run_dir.name} has no report.html."
            )
        return FileResponse(path, media_type="text/html")

    def customer_search(self, request: Request) -> Response:
        wanted = (request.query_params.get("customer_id") or "").strip()
        if wanted:
            # a relative Location: never built from the request's Host header
            return RedirectResponse(
                request.url_for("customer", customer_id=wanted).path, status_code=303
            )
        state = self.served(request)
        if isinstance(state, HTMLResponse):
            return state
        return self.render(request, "search.html", example=str(state.portrait.index[0]))

    def customer(self, request: Request) -> Response:
        state = self.served(request)
        if isinstance(state, HTMLResponse):
            return state
        cid = request.path_params["customer_id"].strip()
        if not CUSTOMER_ID.match(cid) or not state.knows(cid):
            return self.message(
                request, 404, "Customer not found",
                f"No customer with id “{cid[:64]}” in the portrait as of {state.as_of.date()}. "
                f"Check the id and search again (ids look like {state.portrait.index[0]}).",
                search=True,
            )  # fmt: skip
        context = self.customer_context(request, state, cid)
        self.record(request, "customer_page", customer_id=cid)
        return self.render(request, "customer.html", state=state, **context)

    def record(self, request: Request, action: str, **fields: Any) -> None:
        """An access-log line: who (the key's name) did `action`."""
        record_access(self.access_fn() if self.access_fn else None, request.scope, action, **fields)

    def customer_context(self, request: Request, state: ServingState, cid: str) -> dict[str, Any]:
        answer, excluded = recommend_answer(state, RecommendRequest(customer_id=cid, k=5))
        audit = self.audit_fn() if self.audit_fn else None
        if audit is not None:
            audit.record(excluded, model_version=state.model_version, at=datetime.now(UTC))
        offered = {i["product_id"] for i in answer["items"]}
        line = request.query_params.get("line", "")
        page = _int(request.query_params.get("page"), 1)
        points = customer.asset_series(state, cid)
        run = self.summaries.get(state.run_dir)
        return {
            "cid": cid,
            "opted_out": customer.opted_out(state, cid),
            "summary": customer.portrait_summary(state, cid),
            "segment": customer.segment_facts(state, cid),
            "card": customer.segment_card(state, cid, run["profiles"]),
            "churn": customer.churn_view(state, cid),
            "holdings": customer.holdings_view(state, cid),
            "trend_svg": asset_trend_svg(points),
            "trend_text": trend_summary(points),
            "answer": answer,
            "not_offered": customer.not_offered(state, cid, offered),
            "timeline": customer.timeline_page(state, cid, page=page, line=line),
            "lines": customer.LINE_LABELS,
        }

    def audiences_page(self, request: Request) -> Response:
        state = self.served(request)
        if isinstance(state, HTMLResponse):
            return state
        return self.render(
            request, "audiences.html", state=state, ready=audiences.ready_made(), query=""
        )

    async def audiences_run(self, request: Request) -> Response:
        state = self.served(request)
        if isinstance(state, HTMLResponse):
            return state
        form = await request.form()
        ready = str(form.get("ready") or "")
        query = audiences.READY_MADE.get(ready, str(form.get("query") or ""))
        result, error = await self.evaluate(state, query, audiences.SAMPLE_SIZE)
        return self.render(
            request, "audiences.html", 400 if error else 200, state=state,
            ready=audiences.ready_made(), query=query, result=result, error=error,
        )  # fmt: skip

    async def audiences_count(self, request: Request) -> Response:
        state = self.state_fn()
        if state is None:
            return JSONResponse(
                {"error": "the service is still loading; try again in a moment"}, 503
            )
        form = await request.form()
        query = str(form.get("query") or "")
        result, error = await self.evaluate(state, query, audiences.SAMPLE_SIZE)
        return JSONResponse(
            {"error": error} if error else result, status_code=400 if error else 200
        )

    async def audiences_download(self, request: Request) -> Response:
        state = self.served(request)
        if isinstance(state, HTMLResponse):
            return state
        form = await request.form()
        query, fmt = str(form.get("query") or ""), str(form.get("format") or "csv")
        try:
            body, media, filename, result = await self.pool.run(self.export, state, query, fmt)
        except PortraitError as exc:
            return self.render(
                request, "audiences.html", 400, state=state, ready=audiences.ready_made(),
                query=query, error=str(exc),
            )  # fmt: skip
        self.record(request, "audience_export", query=query, count=result.count, format=fmt,
                    columns=list(result.frame.columns))  # fmt: skip
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        return Response(body, media_type=media, headers=headers)

    def export(self, state: ServingState, query: str, fmt: str) -> tuple[bytes, str, str, Any]:
        """The whole audience (no sample limit) as file bytes, media type, file name, result."""
        if fmt not in audiences.FORMATS:
            raise PortraitError(f"download format must be csv or parquet, got {fmt[:20]!r}")
        result = audiences.run_query(state, query, limit=None)
        return (*audiences.export(result, fmt), result)

    async def evaluate(
        self, state: ServingState, query: str, limit: int
    ) -> tuple[dict | None, str | None]:
        """Counts and sample, or the query error's message (with its caret) for the page."""
        try:
            result = await self.pool.run(partial(audiences.run_query, limit=limit), state, query)
        except PortraitError as exc:
            return None, str(exc)
        return audiences.summary(result), None

    async def not_found(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        text = (
            "There is no page at this address."
            if status == 404
            else str(getattr(exc, "detail", ""))
        )
        return self.message(
            request, status, "Page not found" if status == 404 else "Request refused", text
        )

    async def crashed(self, request: Request, exc: Exception) -> Response:
        log.exception("UI page %s failed", request.url.path, exc_info=exc)
        return self.message(
            request, 500, "Something went wrong",
            "The page could not be built. The error was logged for the service team; "
            "try again, or go back to the overview.",
        )  # fmt: skip


def _int(text: str | None, default: int) -> int:
    try:
        return max(1, int(text or default))
    except ValueError:
        return default


def _mlflow_command(state: ServingState) -> str:
    from training.tracking import tracking_uri, ui_command

    return ui_command(tracking_uri(state.settings.tracking))


def create_app(
    state: StateFn,
    *,
    audit: AuditFn | None = None,
    access: AuditFn | None = None,
    pool: AudiencePool | None = None,
    mlflow_command: Callable[[ServingState], str] = _mlflow_command,
) -> Starlette:
    """The UI app; `state` returns the ServingState being served (None while loading), `access`
    the access log, `pool` where audience queries run (the service shares its own)."""
    pool = pool or AudiencePool(workers=2, budget=30.0)
    pages = Pages(state, audit, mlflow_command, access=access, pool=pool)
    routes = [
        Route("/", pages.overview, name="overview"),
        Route("/report", pages.report, name="report"),
        Route("/customers", pages.customer_search, name="customer_search"),
        Route("/customers/{customer_id:path}", pages.customer, name="customer"),
        Route("/audiences", pages.audiences_page, methods=["GET"], name="audiences"),
        Route("/audiences", pages.audiences_run, methods=["POST"], name="audiences_run"),
        Route("/audiences/count", pages.audiences_count, methods=["POST"], name="audiences_count"),
        Route(
            "/audiences/download",
            pages.audiences_download,
            methods=["POST"],
            name="audiences_download",
        ),  # fmt: skip
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handlers = {HTTPException: pages.not_found, Exception: pages.crashed}
    return Starlette(routes=routes, exception_handlers=handlers)

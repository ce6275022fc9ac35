"""The BentoML service: next best products, customer profile, audiences, reload, health.

Start it with `portrait serve --run RUN_DIR` or `PORTRAIT_RUN_DIR=RUN_DIR bentoml serve
serving.service:Portrait`. Each worker loads the run and the champion models once, in the
background, into one immutable state; /readyz answers 200 only once every worker loaded them. `POST
/admin/reload` builds a new state and swaps it in only when it loaded and passed a smoke
prediction, then every other worker does the same with the same run and model versions
(serving/worker_state.py). POST /recommend is served by serving/api_app.py in its own lane in
front of BentoML's app (serving/front_door.py).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import bentoml
import pandas as pd
from bentoml._internal.context import server_context
from starlette.responses import JSONResponse

from portrait.errors import PortraitError
from portrait.settings import Settings, load_settings
from serving.access import AccessControl, access_config
from serving.api_app import create_api_app
from serving.audience_pool import AudienceBusy, AudiencePool
from serving.audit import ExclusionAudit, prometheus_counter
from serving.front_door import FrontDoorService, Lanes
from serving.generations import Generations, ReloadBusy, state_dir
from serving.logs import JsonLinesLog, quiet_client_errors, record_access
from serving.profile import build_profile
from serving.runs import RunRefused, latest_run_dir, reload_target, run_roots
from serving.schemas import (
    AudienceRequest,
    AudienceResponse,
    ProfileRequest,
    ProfileResponse,
    ReloadRequest,
    ReloadResponse,
)
from serving.state import AUDIT_ENV, RUN_ENV, SETTINGS_ENV, ServingState
from serving.ui import create_app as create_ui_app
from serving.ui import current_service_access, current_service_audit, current_service_state
from serving.worker_state import WorkerState

log = logging.getLogger("portrait.service")


def settings_from_env() -> Settings:
    """Settings passed by `portrait serve` as JSON {"config": path, "overrides": {...}}."""
    raw = json.loads(os.environ.get(SETTINGS_ENV) or "{}")
    return load_settings(raw.get("config"), raw.get("overrides") or {})


SETTINGS = settings_from_env()
# Audience queries (API and pages) share this pool: they never take /recommend's threads.
AUDIENCES = AudiencePool(
    workers=SETTINGS.serving.audience_workers, budget=SETTINGS.serving.audience_budget_seconds
)


# BentoML's own request metrics and access log are off: they carry every raw path (customer ids
# in URLs) into /metrics and stdout, unbounded; the access middleware counts requests by route
# template and serves /metrics to admins, and the access log records who read whom. Tracing is
# off (BentoML samples 0 traces by default) and its middleware skips every route: even sampling
# nothing it cost 0.6 ms a request, more than a recommendation (benchmarks/serve.py). A deployment
# that wants traces sets tracing.sample_rate and tracing.excluded_urls in its BentoML
# configuration file, which overrides this.
SERVICE_CONFIG: dict[str, Any] = {
    "workers": 2,
    "threads": 4,
    "traffic": {"timeout": 60},
    "metrics": {"enabled": False},
    "logging": {"access": {"enabled": False}},
    "tracing": {"excluded_urls": [".*"]},
    "http": {"host": "127.0.0.1", "port": 3000},
}


# A reload answers within BentoML's 60 s timeout: after this worker's own load it waits for the
# other workers only for what is left of this budget (they go on loading either way).
RELOAD_BUDGET_SECONDS = 50.0


def error(status: int, message: str, detail: Any = None, *, ctx: Any = None) -> JSONResponse:
    """A 4xx/5xx answer with a JSON body {"error": ..., "detail": ...}. An API taking `ctx` passes
    it: BentoML then answers with ctx's status, whatever the response says."""
    if ctx is not None:
        ctx.response.status_code = status
    return JSONResponse({"error": message, "detail": detail}, status_code=status)


# Web pages for staff and marketers (serving/ui), reading the same state as the API.
@bentoml.asgi_app(
    create_ui_app(
        current_service_state, audit=current_service_audit, access=current_service_access,
        pool=AUDIENCES,
    ),
    path="/ui",
)  # fmt: skip
# POST /recommend is not a @bentoml.api: it has its own lane in front of BentoML's app
# (serving/front_door.py, serving/api_app.py), set up below.
@bentoml.service(name="portrait", service_class=FrontDoorService, **SERVICE_CONFIG)
class Portrait:
    """Recommendations, profiles and audiences from one run and the champion models."""

    def __init__(self) -> None:
        self.settings = SETTINGS
        self.run_dir = Path(
            os.environ.get(RUN_ENV) or latest_run_dir(_tracking_uri(self.settings))
        ).resolve()
        self.roots = run_roots(self.settings, self.run_dir)
        serving = self.settings.serving
        bounds = {"max_bytes": serving.log_max_bytes, "backups": serving.log_backups}
        audit_path = Path(os.environ.get(AUDIT_ENV) or self.run_dir / "audit" / "exclusions.jsonl")
        self.audit = ExclusionAudit(Path(audit_path), count=prometheus_counter(), **bounds)
        access_path = serving.access_log or audit_path.parent / "access.jsonl"
        self.access_log = JsonLinesLog(Path(access_path), log="access", **bounds)
        self.served = WorkerState(
            settings=self.settings, run_dir=self.run_dir, generations=Generations(
                state_dir(os.environ)), worker=server_context.worker_index or 1,
            workers=_configured_workers(), on_loaded=_start_warming,
        )  # fmt: skip
        self.holder = self.served.holder  # the pages read the state through it
        self.served.start()

    @property
    def last_load(self) -> str:
        """What the last load of this worker did ("loading", "loaded run ...", "failed: ...")."""
        return self.served.last_load

    def __is_ready__(self) -> bool:
        """Ready once every worker has loaded a state (run and champion models)."""
        return self.served.ready()

    def _state(self, ctx: Any = None) -> ServingState | JSONResponse:
        state = self.holder.current
        if state is None:
            return error(503, "models are not loaded yet", self.last_load, ctx=ctx)
        return state

    def current_state(self) -> ServingState | None:
        """The state requests answer from now (None until the first load succeeded)."""
        return self.holder.current

    @bentoml.api(input_spec=ProfileRequest)
    def profile(self, ctx: bentoml.Context, **fields: Any) -> ProfileResponse:
        """The portrait of a customer for front-line staff, with a paged behaviour timeline."""
        state = self._state(ctx)
        if isinstance(state, JSONResponse):
            return state
        request = ProfileRequest.model_validate(fields)
        if not state.knows(request.customer_id):
            return error(404, f"customer {request.customer_id!r} is not in the portrait", ctx=ctx)
        profile = build_profile(
            state, request.customer_id, page=request.page, page_size=request.page_size
        )
        record_access(
            self.access_log, ctx.request.scope, "profile", customer_id=request.customer_id
        )
        return ProfileResponse.model_validate(profile)

    @bentoml.api(input_spec=AudienceRequest)
    async def audience(self, ctx: bentoml.Context, **fields: Any) -> AudienceResponse:
        """Count and sample of an audience query; opted-out customers are never included."""
        state = self._state(ctx)
        if isinstance(state, JSONResponse):
            return state
        request = AudienceRequest.model_validate(fields)
        try:
            result = await AUDIENCES.run(_audience, state, request)
        except AudienceBusy as exc:
            return error(429, str(exc), ctx=ctx)
        except PortraitError as exc:
            return error(400, str(exc), {"query": request.query}, ctx=ctx)
        sample = json.loads(result.frame.to_json(orient="records", date_format="iso"))
        record_access(self.access_log, ctx.request.scope, "audience", query=request.query,
                      count=result.count, rows=len(sample), columns=list(result.frame.columns))  # fmt: skip
        return AudienceResponse.model_validate({**result.summary(), "sample": sample})

    @bentoml.api(route="/admin/reload", input_spec=ReloadRequest)
    def reload(self, ctx: bentoml.Context, **fields: Any) -> ReloadResponse:
        """Load a verified run and the current champions on every worker; each worker swaps only
        once its copy loaded and predicted, so the old state answers until then."""
        started, request = time.monotonic(), ReloadRequest.model_validate(fields)
        try:
            run_dir = reload_target(run_dir=request.run_dir, run_id=request.run_id,
                                    roots=self.roots, served=self.served.run_dir)  # fmt: skip
        except RunRefused as exc:
            return error(400, str(exc), ctx=ctx)
        record_access(self.access_log, ctx.request.scope, "reload", run=run_dir.name)
        try:
            ok, reason, generation = self.served.reload(run_dir)
        except ReloadBusy as exc:
            return error(409, str(exc), ctx=ctx)
        left = RELOAD_BUDGET_SECONDS - (time.monotonic() - started)
        workers = self.served.wait_for_workers(generation, seconds=max(left, 0.0)) if ok else 0
        if ok and workers < self.served.workers:
            reason += (
                f"; {workers} of {self.served.workers} workers serve it, the others load it now"
            )
        state = self.holder.current
        return ReloadResponse(
            reloaded=ok, run_dir=(state.run_dir if state else run_dir).name,
            model_version=state.model_version if state else "", reason=reason,
            generation=generation, workers=workers, of_workers=self.served.workers,
        )  # fmt: skip


quiet_client_errors()  # a rejected body is one log line, never a traceback quoting the input
# What each worker serves: every route, BentoML's own included, passes the access middleware
# (serving/access.py); then POST /recommend goes to its own lane, everything else to BentoML.
Portrait.front.extend([
    lambda app: Lanes(app, {"/recommend": create_api_app()}),
    lambda app: AccessControl(app, config=access_config(
        SETTINGS, os.environ, body_seconds=_service_config("traffic.timeout") or 60.0)),
])  # fmt: skip


def _audience(state: ServingState, request: AudienceRequest) -> Any:
    """Run an audience request on the served state (on the audience pool)."""
    from experiments.audience import run_audience

    return run_audience(
        request.query,
        tables=state.tables,
        portrait=state.portrait.reset_index(drop=True),
        extras=state.audience_extras(),
        as_of=pd.Timestamp(request.as_of) if request.as_of else state.as_of,
        limit=request.limit,
    )


def _start_warming(state: ServingState) -> None:
    """Explain the likely answers' model pairs while already serving (requests explain their
    own pairs on demand meanwhile)."""
    threading.Thread(target=_warm, args=(state,), name="portrait-warm", daemon=True).start()


def _warm(state: ServingState) -> None:
    """Warm `state`'s reasons; a failure here costs only speed, never an answer."""
    try:
        log.info("explained %d pairs ahead of requests", state.warm())
        gc.freeze()  # the explained reasons live as long as the state (worker_state.freeze_heap)
    except Exception:  # noqa: BLE001 - warming is an optimisation; requests explain on demand
        log.exception("warming the reasons of %s failed", state.run_dir)


def _service_config(key: str) -> Any:
    """One of this service's BentoML settings ("workers", "traffic.timeout"): SERVICE_CONFIG's,
    or what a BentoML configuration file (or BENTOML_CONFIG_OPTIONS) set instead."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    node = BentoMLContainer.config.services["portrait"]
    for part in key.split("."):
        node = getattr(node, part)
    return node.get()


def _configured_workers() -> int:
    """How many workers BentoML runs for this service."""
    from bentoml._internal.resource import system_resources

    workers = _service_config("workers") or 1
    return int(system_resources()["cpu"]) if workers == "cpu_count" else int(workers)


def _tracking_uri(settings: Settings) -> str:
    from training.tracking import tracking_uri

    return tracking_uri(settings.tracking)

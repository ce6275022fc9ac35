"""POST /recommend, the route apps call on every screen, as a plain Starlette app that the BentoML
service mounts (`@bentoml.asgi_app`), behind the same access middleware as every other route.

Measured (benchmarks/serve.py): a `@bentoml.api` costs more than the answer itself, in its input
and output models (the body validated twice, the answer streamed in chunks), its thread hop and
its per-request warnings. Here the body is validated once (`RecommendRequest.model_validate_json`),
the answer is computed on the event loop (array look-ups, no I/O) and sent in one piece, validated
against `RecommendResponse`. Bad input is a 400 naming the fields, as BentoML's own answers are.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving.answers import UnknownCustomer, recommend_answer
from serving.schemas import ErrorBody, RecommendRequest, RecommendResponse

JSON = "application/json"
log = logging.getLogger("portrait.service")


def json_error(status: int, message: str, detail: Any = None) -> Response:
    """A 4xx/5xx answer with the body every service error has: {"error": ..., "detail": ...}."""
    body = ErrorBody(error=message, detail=detail).model_dump_json()
    return Response(body, status_code=status, media_type=JSON)


def invalid(exc: ValidationError) -> Response:
    """A 400 naming each field that failed (never echoing the input), like BentoML's answer."""
    detail = exc.errors(include_context=False, include_input=False, include_url=False)
    return json_error(400, f"{exc.error_count()} validation error for {exc.title}", detail)


def recommend_response(service: Any, body: bytes) -> Response:
    """The answer to one POST /recommend body on `service` (the running Portrait instance)."""
    state = service.current_state()
    if state is None:
        return json_error(503, "models are not loaded yet", service.last_load)
    try:
        request = RecommendRequest.model_validate_json(body)
    except ValidationError as exc:
        return invalid(exc)
    try:
        answer, excluded = recommend_answer(state, request)
    except UnknownCustomer as exc:
        return json_error(404, str(exc), {"customer_id": request.customer_id})
    service.audit.record(excluded, model_version=state.model_version, at=datetime.now(UTC))
    payload = RecommendResponse.model_validate(answer).model_dump_json()
    return Response(payload, media_type=JSON)


def running_service() -> Any:
    """The BentoML service instance of this worker (None while it is being created)."""
    import bentoml
    from bentoml.exceptions import BentoMLException

    try:
        return bentoml.get_current_service()
    except BentoMLException:
        return None


def create_api_app(current_service: Any = running_service) -> Starlette:
    """The Starlette app of the hot route; `current_service()` is the running service (or None)."""

    async def recommend(request: Request) -> Response:
        service = current_service()
        if service is None:
            return json_error(503, "the service is starting")
        try:
            return recommend_response(service, await request.body())
        except Exception as exc:  # noqa: BLE001 - a JSON 500, logged without the input
            log.error("/recommend failed: %s", type(exc).__name__)
            log.debug("traceback", exc_info=True)
            return json_error(500, "internal error; it was logged")

    return Starlette(routes=[Route("/recommend", recommend, methods=["POST"])])

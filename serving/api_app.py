"""POST /recommend, the route apps call on every screen: a plain ASGI app in its own lane
(serving/front_door.py), behind the same access middleware as every other route.

Measured (benchmarks/serve.py): a `@bentoml.api` costs more than the answer itself, in its input
and output models (the body validated twice, the answer streamed in chunks), its thread hop and
its per-request warnings, and BentoML's middleware stack as much again. Here the body is
validated once (`RecommendRequest.model_validate_json`), the answer is computed on the event loop
(array look-ups, no I/O, nothing awaited) and sent in one piece, serialised through
`RecommendResponse`; a plain request's answer is computed once per state and kept
(serving/answer_memo.py), its exclusions audited every time. Bad input is a 400 naming the
fields, as BentoML's own answers are.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from serving.answer_memo import plain_key
from serving.answers import UnknownCustomer, recommend_answer
from serving.schemas import ErrorBody, RecommendRequest, RecommendResponse

JSON = [(b"content-type", b"application/json")]
log = logging.getLogger("portrait.service")


class Answer(NamedTuple):
    """An HTTP answer: status and JSON body."""

    status_code: int
    body: bytes


def json_error(status: int, message: str, detail: Any = None) -> Answer:
    """A 4xx/5xx answer with the body every service error has: {"error": ..., "detail": ...}."""
    return Answer(status, ErrorBody(error=message, detail=detail).model_dump_json().encode())


def invalid(exc: ValidationError) -> Answer:
    """A 400 naming each field that failed (never echoing the input), like BentoML's answer."""
    detail = exc.errors(include_context=False, include_input=False, include_url=False)
    return json_error(400, f"{exc.error_count()} validation error for {exc.title}", detail)


def recommend_response(service: Any, body: bytes) -> Answer:
    """The answer to one POST /recommend body on `service` (the running Portrait instance)."""
    state = service.current_state()
    if state is None:
        return json_error(503, "models are not loaded yet", service.last_load)
    try:
        request = RecommendRequest.model_validate_json(body)
    except ValidationError as exc:
        return invalid(exc)
    key = plain_key(state, request)
    kept = state.answers.get(key) if key else None
    if kept is not None:
        payload, excluded = kept
    else:
        try:
            answer, excluded = recommend_answer(state, request)
        except UnknownCustomer as exc:
            return json_error(404, str(exc), {"customer_id": request.customer_id})
        payload = RecommendResponse.model_validate(answer).model_dump_json().encode()
        if key:
            state.answers.put(key, payload, excluded)
    service.audit.record(excluded, model_version=state.model_version, at=datetime.now(UTC))
    return Answer(200, payload)


def running_service() -> Any:
    """The BentoML service instance of this worker (None while it is being created)."""
    from _bentoml_sdk import get_current_service
    from bentoml.exceptions import BentoMLException

    try:
        return get_current_service()
    except BentoMLException:
        return None


def create_api_app(current_service: Any = running_service) -> Any:
    """The ASGI app of /recommend; `current_service()` is the running service (or None)."""

    async def recommend(scope: dict, receive: Any, send: Any) -> None:
        if scope["method"] != "POST":
            answer = json_error(405, "use POST /recommend")
            return await _send(send, answer, [(b"allow", b"POST")])
        body = await _body(receive)
        service = current_service()
        if service is None:
            return await _send(send, json_error(503, "the service is starting"))
        try:
            answer = recommend_response(service, body)
        except Exception as exc:  # noqa: BLE001 - a JSON 500, logged without the input
            log.error("/recommend failed: %s", type(exc).__name__)
            log.debug("traceback", exc_info=True)
            answer = json_error(500, "internal error; it was logged")
        await _send(send, answer)

    return recommend


async def _body(receive: Any) -> bytes:
    """The request body (the access middleware has read it once, bounded, and replays it)."""
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _send(send: Any, answer: Answer, extra: list | None = None) -> None:
    length = [(b"content-length", str(len(answer.body)).encode())]
    start = {"type": "http.response.start", "status": answer.status_code,
             "headers": JSON + length + (extra or [])}  # fmt: skip
    await send(start)
    await send({"type": "http.response.body", "body": answer.body})

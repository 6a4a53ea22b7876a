"""Every error leaves as JSON: ``{"error": {message, type, param, code}}``.

Paths under ``/api`` also carry the seed's top-level ``"status": "error"``, which its
clients check. Nothing leaves as a bare 500 page.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from stepaudio.errors import InvalidParameter, StepAudioError
from stepaudio.params import ProcessParams

log = logging.getLogger(__name__)

_HTTP_TYPES = {
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(path: str, error: dict) -> dict:
    body: dict = {"error": error}
    if path.startswith("/api"):
        body["status"] = "error"
    return body


def error_response(path: str, exc: StepAudioError) -> JSONResponse:
    """``exc`` as the response of a request to ``path``: the one way an error reaches the
    wire as a status (routes' handlers and the guard alike)."""
    return JSONResponse(
        error_body(path, exc.to_dict()), status_code=exc.status_code, headers=exc.headers()
    )


def websocket_error(exc: StepAudioError) -> tuple[dict, int]:
    """``exc`` on a WebSocket: the ``error`` event (OpenAI's Realtime shape) and the close
    code if the session cannot go on (1008 policy: keys and limits; 1011 our fault; 1013
    try again later; else the session stays open, 0)."""
    event = {"type": "error", "error": exc.to_dict()}
    if exc.status_code in (401, 413):
        return event, 1008
    if exc.status_code in (429, 503):
        return event, 1013
    if exc.status_code >= 500:
        return event, 1011
    return event, 0


def _client_path(loc: tuple[int | str, ...]) -> str | None:
    """A field's location as the client wrote it: ``messages[0].content[1].type``."""
    path = ""
    for part in loc:
        if part in ("body", "query", "form"):
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or None


def validation_error(exc: ValidationError | RequestValidationError) -> InvalidParameter:
    """The first problem of a pydantic validation, as one readable error."""
    first = exc.errors()[0]
    path = _client_path(tuple(first.get("loc", ())))
    # The name is the client's (an unknown field may be any length): echoed, but cut.
    param = path[:64] if path else None
    message = first.get("msg", "Invalid request")
    kind = first.get("type")
    if kind == "missing":
        message = f"The field '{param}' is required."
    elif kind == "extra_forbidden":
        return InvalidParameter(
            f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter"
        )
    elif param:
        message = f"Invalid value for '{param}': {message}"
    return InvalidParameter(message, param=param)


def live_params(param: str, names: dict[str, str] | None = None, **values: Any) -> ProcessParams:
    """``ProcessParams`` from a live session's event, a bad value as an ``InvalidParameter``
    naming where in the event it was (``session.audio.input.transcription.language``;
    ``names``: the event's name of a field where it differs): the session answers it with
    an ``error`` event and goes on."""
    try:
        return ProcessParams(**values)
    except ValidationError as exc:
        first = validation_error(exc)
        field = (names or {}).get(first.param or "", first.param or "")
        message = first.message.replace(f"'{first.param}'", f"'{field}'")
        raise InvalidParameter(message, param=f"{param}.{field}".rstrip(".")) from None


def install(app: FastAPI) -> None:
    @app.exception_handler(StepAudioError)
    async def _ours(request: Request, exc: StepAudioError) -> JSONResponse:
        if exc.status_code >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request.url.path, validation_error(exc))

    @app.exception_handler(ValidationError)
    async def _validation(request: Request, exc: ValidationError) -> JSONResponse:
        return error_response(request.url.path, validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = {
            "message": str(exc.detail),
            "type": _HTTP_TYPES.get(exc.status_code, "invalid_request_error"),
            "param": None,
            "code": str(exc.status_code),
        }
        return JSONResponse(
            error_body(request.url.path, error), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("Unexpected error on %s %s", request.method, request.url.path)
        internal = StepAudioError(f"Internal error: {type(exc).__name__}")
        return error_response(request.url.path, internal)

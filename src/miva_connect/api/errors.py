"""Exception handlers: every error answers `{"error": {"code", "message", "field", ...}}`."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from miva_connect.crypto import DecryptionError
from miva_connect.errors import AppError

log = structlog.get_logger(__name__)

# Our own texts: pydantic's may quote the submitted value (a key, a token).
_FIELD_MESSAGES = {
    "missing": "This field is required.",
    "string_too_long": "This value is too long.",
    "string_type": "This value must be a string.",
    "json_invalid": "The body is not valid JSON.",
    "model_attributes_type": "The body must be a JSON object.",
    "dict_type": "The body must be a JSON object.",
}


def _error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": None, **extra}}
    return JSONResponse(body, status_code=status)


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for item in exc.errors():
        location = [
            str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path")
        ]
        problems.append(
            {
                "field": ".".join(location) or None,
                "message": _FIELD_MESSAGES.get(str(item.get("type")), "This value is not valid."),
            }
        )
    first = problems[0] if problems else {"field": None, "message": "The request is not valid."}
    body = {"error": {"code": "invalid_request", **first, "errors": problems}}
    return JSONResponse(body, status_code=422)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    message = {"not_found": "Not found.", "method_not_allowed": "Method not allowed."}.get(
        code, "The request could not be processed."
    )
    response = _error(exc.status_code, code, message)
    response.headers.update(exc.headers or {})
    return response


async def _decryption_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DecryptionError)
    # An ops problem (a key was removed from the ring), never the merchant's fault.
    log.error("crypto.decrypt_failed", key_id=exc.key_id, reason=exc.reason)
    return _error(503, "service_unavailable", "The service is not able to read stored data.")


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("request.failed", error=type(exc).__name__)
    return _error(500, "internal_error", "Something went wrong on our side. Try again later.")


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DecryptionError, _decryption_error)
    app.add_exception_handler(Exception, _unexpected)

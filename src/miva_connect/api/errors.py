"""Exception handlers: every error answers `{"error": {"code", "message", "field", ...}}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from miva_connect.crypto import DecryptionError
from miva_connect.errors import AppError
from miva_connect.middleware import REQUEST_ID_SCOPE_KEY, SECURITY_HEADERS

log = structlog.get_logger(__name__)

PAGES_PREFIX = "/connect/sessions/"

# Our own texts: pydantic's may quote the submitted value (a key, a token).
_FIELD_MESSAGES = {
    "missing": "This field is required.",
    "string_too_long": "This value is too long.",
    "string_type": "This value must be a string.",
}
_BODY_MESSAGES = {
    "json_invalid": "The body is not valid JSON.",
    "missing": "A JSON body is required (Content-Type: application/json).",
}


_HTTP_ERRORS = {
    401: ("unauthorized", "Channel authentication required (HTTP Basic id:secret)."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    413: ("request_too_large", "The request body is too large."),
}


def _for_pages(request: Request, response: JSONResponse) -> Response:
    """The merchant's pages get an HTML page where the API gets its JSON error."""
    if request.url.path.startswith(PAGES_PREFIX):
        from miva_connect.web.pages import page_for_error  # the web layer sits above this one

        page = page_for_error(response.status_code)
        if page is not None:
            return page
    return response


def _error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": None, **extra}}
    return JSONResponse(body, status_code=status)


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(item) for item in exc.errors()]
    first = problems[0] if problems else {"field": None, "message": "The request is not valid."}
    body = {"error": {"code": "invalid_request", **first, "errors": problems}}
    return JSONResponse(body, status_code=422)


def _problem(item: Mapping[str, Any]) -> dict[str, str | None]:
    kind = str(item.get("type"))
    location = tuple(item.get("loc", ()))
    if kind == "json_invalid" or location == ("body",):
        # The body as a whole: no field to point at.
        text = _BODY_MESSAGES.get(kind, "The body must be a JSON object (application/json).")
        return {"field": None, "message": text}
    field = ".".join(str(part) for part in location if part not in ("body", "query", "path"))
    return {
        "field": field or None,
        "message": _FIELD_MESSAGES.get(kind, "This value is not valid."),
    }


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's answer to a body it cannot decode (not UTF-8, for one).
        return _error(422, "invalid_request", "The body is not valid JSON.")
    code, message = _HTTP_ERRORS.get(
        exc.status_code, ("http_error", "The request could not be processed.")
    )
    response = _error(exc.status_code, code, message)
    response.headers.update(exc.headers or {})
    return _for_pages(request, response)


async def _decryption_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DecryptionError)
    # An ops problem (a key was removed from the ring), never the merchant's fault.
    log.error("crypto.decrypt_failed", key_id=exc.key_id, reason=exc.reason)
    return _error(503, "service_unavailable", "The service is not able to read stored data.")


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    # The database is down, unreachable or not migrated: ops' problem, and a retry may work.
    log.error("database.unavailable", error=type(exc).__name__)
    response = _error(503, "service_unavailable", "The service is unavailable. Try again shortly.")
    return _for_pages(request, response)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette runs this outside every middleware: add what they would have added.
    request_id = str(request.scope.get(REQUEST_ID_SCOPE_KEY, ""))
    log.exception("request.failed", error=type(exc).__name__, request_id=request_id)
    response = _error(500, "internal_error", "Something went wrong on our side. Try again later.")
    response.headers.update({**SECURITY_HEADERS, "X-Request-ID": request_id})
    return response


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DecryptionError, _decryption_error)
    app.add_exception_handler(SQLAlchemyError, _database_unavailable)
    app.add_exception_handler(OSError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)

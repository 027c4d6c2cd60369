"""Application errors: one base, one JSON shape, no web framework needed to raise them.

Every error body is `{"error": {"code", "message", "field", ...extra}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class AppError(Exception):
    """An error with a stable code and a message fit to show to the person who caused it."""

    status_code: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": {"code": self.code, "message": self.message, "field": self.field, **self.extra}
        }


class InvalidRequest(AppError):
    status_code = 422
    default_code = "invalid_request"


class ValidationFailed(AppError):
    """Something the merchant can fix: a bad URL, rejected credentials, missing groups."""

    status_code = 422
    default_code = "validation_failed"


class Unauthorized(AppError):
    status_code = 401
    default_code = "unauthorized"

    def __init__(
        self, message: str = "Channel authentication required (HTTP Basic id:secret)."
    ) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Basic realm="miva-connect"'})


class NotFound(AppError):
    status_code = 404
    default_code = "not_found"


class Conflict(AppError):
    status_code = 409
    default_code = "conflict"


class SessionExpired(AppError):
    status_code = 410
    default_code = "session_expired"

"""OpenAPI descriptions of error answers, shared by the routes."""

from __future__ import annotations

from typing import Any

from miva_connect.api.schemas import ErrorBody


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}

"""The metrics scrape: open, or only for a bearer token (`MIVA_CONNECT_METRICS_TOKEN`)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from pydantic import SecretStr

from miva_connect.errors import AppError
from miva_connect.metrics import CONTENT_TYPE, Metrics

METRICS_PATH = "/metrics"


class ScraperUnauthorized(AppError):
    status_code = 401
    default_code = "unauthorized"

    def __init__(self) -> None:
        super().__init__(
            "A bearer token is required (Authorization: Bearer <token>).",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )


def bearer_matches(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    scheme, _, offered = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        offered.strip().encode(), token.encode()
    )


def metrics_router(metrics: Metrics, token: SecretStr | None) -> APIRouter:
    """`GET /metrics` over this app's metrics; mounted only when metrics are on."""

    def scraper(authorization: Annotated[str | None, Header()] = None) -> None:
        if token is not None and not bearer_matches(authorization, token.get_secret_value()):
            raise ScraperUnauthorized()

    router = APIRouter(tags=["ops"], include_in_schema=False)

    # Sync on purpose: with several workers, a scrape reads every worker's files.
    @router.get(METRICS_PATH, dependencies=[Depends(scraper)])
    def scrape() -> Response:
        """The service's metrics in the Prometheus text format."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return router

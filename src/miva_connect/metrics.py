"""Prometheus metrics, built per app on a registry of its own and exposed at `/metrics`.

Nothing here is created at import time: every app (the tests build many) gets fresh
collectors. Label values come only from bounded sets chosen by the code (route
templates, methods, status codes, outcome codes, limit names), never from a request's
path, a store's host or anything a merchant typed.

Several worker processes (`PROMETHEUS_MULTIPROC_DIR` set before `prometheus_client` is
first imported) write their values to files in that directory; a scrape then reads every
worker's files through a `MultiProcessCollector` on a fresh registry, so whichever
worker answers, the sums are the service's.
"""

from __future__ import annotations

import os

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from miva_connect.ratelimit import REFUSING_LIMITS

log = structlog.get_logger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Anything else a client sends as a method is one label, not one series per invention.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Our answers: milliseconds for most, up to the validation deadline for credentials.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30)
# Stores answer in tens of milliseconds to tens of seconds (Miva's failed-login delay).
STORE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30)


class Metrics:
    """The service's collectors, and the callbacks the app hands to each layer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._files = _multiprocess_directory()
        self._requests = Counter(
            "miva_connect_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._request_seconds = Histogram(
            "miva_connect_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self._validations = Counter(
            "miva_connect_validations",
            "Validation outcomes: ok, or the error code the merchant was given, by step.",
            ["step", "code"],
            registry=self.registry,
        )
        self._store_seconds = Histogram(
            "miva_connect_store_request_duration_seconds",
            "Round trip of one HTTP request to a store, by outcome (status class or error).",
            ["outcome"],
            buckets=STORE_BUCKETS,
            registry=self.registry,
        )
        self._rate_limited = Counter(
            "miva_connect_rate_limited",
            "Attempts refused by a rate limit or the outbound cap, by limit.",
            ["limit"],
            registry=self.registry,
        )
        self._db_in_use = Gauge(
            "miva_connect_db_connections_in_use",
            "Database connections checked out of the pool.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        for limit in REFUSING_LIMITS:
            self._rate_limited.labels(limit)

    def request_answered(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "other"
        self._requests.labels(route, method, str(status)).inc()
        self._request_seconds.labels(route).observe(seconds)

    def validation_outcome(self, step: str, code: str) -> None:
        self._validations.labels(step, code).inc()

    def store_round_trip(self, outcome: str, seconds: float) -> None:
        self._store_seconds.labels(outcome).observe(seconds)

    def rate_limited(self, limit: str) -> None:
        self._rate_limited.labels(limit).inc()

    def db_connections_changed(self, delta: int) -> None:
        self._db_in_use.inc(delta)

    def render(self) -> bytes:
        """The text exposition: this process's registry, or every worker's files."""
        if self._files is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._files)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def _multiprocess_directory() -> str | None:
    """The workers' shared directory, when values really go to files.

    `prometheus_client` chooses in-memory or file-backed values once, when it is first
    imported; a directory set later would be scraped while this process's values stay in
    memory, so this process would vanish from its own scrapes.
    """
    directory = os.environ.get(MULTIPROCESS_ENV)
    in_files = bool(getattr(values.ValueClass, "_multiprocess", False))
    if directory and in_files:
        return directory
    if directory or in_files:
        log.warning("metrics.multiprocess_mismatch", hint=f"set {MULTIPROCESS_ENV} before start")
    return None

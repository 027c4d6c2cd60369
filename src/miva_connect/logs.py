"""Structured logs (JSON in production, readable in development) that never carry a secret.

Every record that reaches our handler, ours and the libraries' (uvicorn, httpx,
SQLAlchemy), passes through `redact`: values under secret-looking keys are replaced,
and Miva authorization headers and session tokens in URL paths are masked in text.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
_HANDLER_NAME = "miva-connect"
_SECRET_KEY = re.compile(r"token|key|secret|signature|authorization|password|cookie|state", re.I)
_NOT_SECRET = frozenset({"key_id", "key_ids", "event"})
_MIVA_HEADER = re.compile(r"\b(MIVA(?:-HMAC-SHA(?:1|256))?)\s+[^\s\"',]+")
# Query strings (access logs) carry a channel's `state`: keep the names, mask the values.
_QUERY_VALUE = re.compile(r"([?&][^=&\s\"']+=)[^&\s\"']+")
_BEARER_PATH = re.compile(r"(/connect/sessions/|/v1/sessions/)[A-Za-z0-9_-]{16,}")


def _scrub(text: str) -> str:
    text = _MIVA_HEADER.sub(rf"\1 {REDACTED}", text)
    text = _QUERY_VALUE.sub(rf"\1{REDACTED}", text)
    return _BEARER_PATH.sub(rf"\1{REDACTED}", text)


def _clean(key: str, value: Any) -> Any:
    if key not in _NOT_SECRET and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, dict):
        return {k: _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean("", v) for v in value]
    return value


def redact(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Mask secrets in every field of a log event."""
    return {key: _clean(key, value) for key, value in event_dict.items()}


def add_pid(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Name the process: with `serve --workers N`, N workers write to one stream."""
    event_dict["pid"] = os.getpid()
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "auto", *, production: bool = False) -> None:
    """Route stdlib and structlog output through one redacting formatter.

    `auto` means JSON in production or when stderr is not a terminal, readable otherwise.
    """
    json_output = fmt == "json" or (fmt == "auto" and (production or not sys.stderr.isatty()))
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_pid,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Replace only our own handler: others (a test's capture, a platform's) stay.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level)
    # aiosqlite narrates every cursor call at DEBUG, parameters included.
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    # httpx logs every store request at INFO: our own `miva.check.failed` says what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True

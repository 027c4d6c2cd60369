"""The sandbox as a Starlette app: json.mvc plus a few pages that are not a Miva API."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from miva_connect.sandbox.api import parse_body, run_body
from miva_connect.sandbox.auth import AUTH_HEADER, ApiRequest, AuthFailure, authenticate
from miva_connect.sandbox.config import RecordedRequest, Sandbox
from miva_connect.sandbox.functions import error

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
MAX_BODY_BYTES = 1 << 20
# Every method reaches json.mvc, which answers non-POST API requests itself.
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
PAGE_METHODS = ["GET", "POST"]

Handler = Callable[[Sandbox, Request], Awaitable[Response]]

# One line per json.mvc request; never the auth header, the body, or any token.
logger = logging.getLogger(__name__)


def create_sandbox_app(sandbox: Sandbox) -> Starlette:
    """A Starlette app that serves `sandbox` (which stays mutable while it runs)."""

    def route(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, partial(handler, sandbox), methods=methods)

    return Starlette(
        routes=[
            route("/mm5/json.mvc", json_api, ALL_METHODS),
            route("/Merchant2/json.mvc", json_api, ALL_METHODS),
            route("/", storefront, PAGE_METHODS),
            route("/mm5/merchant.mvc", storefront, PAGE_METHODS),
            route("/mm5/admin.mvc", storefront, PAGE_METHODS),
            route("/protected/mm5/json.mvc", basic_auth_wall, PAGE_METHODS),
            route("/old/mm5/json.mvc", moved, PAGE_METHODS),
            route("/html/mm5/json.mvc", storefront, PAGE_METHODS),
            route("/empty/mm5/json.mvc", header_stripped, PAGE_METHODS),
            route("/broken/mm5/json.mvc", broken, PAGE_METHODS),
            route("/channel/return", channel_return, ["GET"]),
        ],
        max_body_size=MAX_BODY_BYTES,
    )


async def _record(sandbox: Sandbox, request: Request) -> tuple[bytes, str]:
    """Keep the request for tests to inspect; return its raw body and the caller's IP."""
    body = await request.body()
    client_ip = request.client.host if request.client else ""
    if sandbox.record_requests:
        sandbox.requests.append(
            RecordedRequest(
                request.method, request.url.path, dict(request.headers), body, client_ip
            )
        )
    return body, client_ip


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(body, status, headers, media_type=JSON_CONTENT_TYPE)


async def json_api(sandbox: Sandbox, request: Request) -> Response:
    """json.mvc: the API path when the auth header is present, else the browser path."""
    raw, client_ip = await _record(sandbox, request)
    if sandbox.latency > 0:
        await asyncio.sleep(sandbox.latency)
    authorization = request.headers.get(AUTH_HEADER, "")
    content_type = request.headers.get("content-type", "")
    if not authorization:
        # The browser/admin path: a function name without a session outputs nothing.
        logger.info("json.mvc %s from %s: no API header, empty reply", request.method, client_ip)
        is_json = content_type[:16] == "application/json"
        return Response(b"", media_type=JSON_CONTENT_TYPE if is_json else "text/html")
    if sandbox.api_offline:
        logger.info("json.mvc %s from %s: API offline", request.method, client_ip)
        return json_reply(error("api_offline", "The API is currently offline"), 503)
    body = parse_body(raw)
    timestamp = body.get("Miva_Request_Timestamp") if body is not None else None
    api_request = ApiRequest(request.method, content_type, authorization, raw, timestamp, client_ip)
    outcome = authenticate(sandbox, api_request, time.time())
    if isinstance(outcome, AuthFailure):
        logger.info("json.mvc %s from %s: refused: %s", request.method, client_ip, outcome.message)
        if outcome.delay and sandbox.login_delay > 0:
            await asyncio.sleep(sandbox.login_delay)
        return json_reply(error("access_denied", outcome.message))
    reply = run_body(sandbox, outcome, body, request.headers.get("range", ""))
    logger.info("json.mvc POST from %s: accepted, HTTP %d", client_ip, reply.status)
    return json_reply(reply.payload, reply.status, reply.headers)


def _page(title: str, text: str) -> str:
    return (
        f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )


async def storefront(sandbox: Sandbox, request: Request) -> Response:
    """A storefront or admin page: HTML, not an API."""
    await _record(sandbox, request)
    return HTMLResponse(_page("Sandbox Store", "A storefront page, not the JSON API."))


async def basic_auth_wall(sandbox: Sandbox, request: Request) -> Response:
    """A password-protected staging store: the web server answers before Miva does."""
    await _record(sandbox, request)
    return HTMLResponse(
        _page("401 Authorization Required", "This server could not verify your credentials."),
        401,
        {"WWW-Authenticate": 'Basic realm="Staging"'},
    )


async def moved(sandbox: Sandbox, request: Request) -> Response:
    """An http-to-https style permanent redirect from the web server."""
    await _record(sandbox, request)
    return RedirectResponse(f"https://{request.url.netloc}/mm5/json.mvc", 301)


async def header_stripped(sandbox: Sandbox, request: Request) -> Response:
    """json.mvc behind a proxy that drops `X-` headers: always the empty non-API reply."""
    await _record(sandbox, request)
    return Response(b"", media_type="text/html")


async def broken(sandbox: Sandbox, request: Request) -> Response:
    """A store whose web server fails."""
    await _record(sandbox, request)
    return HTMLResponse(_page("500 Internal Server Error", "The server failed."), 500)


async def channel_return(sandbox: Sandbox, request: Request) -> Response:
    """Stands in for the channel app the merchant is sent back to: shows what it received."""
    await _record(sandbox, request)
    items = "".join(
        f"<li><code>{html.escape(key)}</code> = <code>{html.escape(value)}</code></li>"
        for key, value in request.query_params.multi_items()
    )
    return HTMLResponse(
        "<!DOCTYPE html><html><head><title>Channel</title></head><body>"
        f"<h1>Back at the channel</h1><ul>{items}</ul></body></html>"
    )

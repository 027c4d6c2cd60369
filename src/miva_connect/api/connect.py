"""Browser entry points: a channel's link opens a session and lands on the session's page."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import HTMLResponse, RedirectResponse

from miva_connect.api.deps import ClientAddress, OnboardingDep
from miva_connect.api.responses import errors

router = APIRouter(prefix="/connect", tags=["browser"])

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Connect your Miva store</title></head>
<body><main>
<h1>Connect your Miva store to {channel}</h1>
<p>Status: <strong>{status}</strong>{store}</p>
<p>Have ready, from your Miva admin (Settings &gt; User Management &gt; API Tokens):
the token's Endpoint URL, Access Token and Signing Key, and your Store Code
(Settings &gt; Store Settings).</p>
</main></body></html>
"""


@router.get(
    "/{channel_slug}",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses=errors(404, 422, 429),
)
async def open_from_link(
    channel_slug: str,
    onboarding: OnboardingDep,
    client: ClientAddress,
    state: Annotated[str, Query()] = "",
) -> RedirectResponse:
    """A channel's link: open a session and go to its page."""
    opened = await onboarding.open_session_for_slug(channel_slug, state, client)
    return RedirectResponse(opened.connect_url, status.HTTP_303_SEE_OTHER)


@router.get("/sessions/{token}", response_class=HTMLResponse, responses=errors(404, 410))
async def session_page(token: str, onboarding: OnboardingDep) -> HTMLResponse:
    """The session's page in the merchant's browser."""
    view = await onboarding.describe(token)
    store = f" &middot; {escape(view.store_url)}" if view.store_url else ""
    html = _PAGE.format(channel=escape(view.channel_name), status=escape(view.status), store=store)
    return HTMLResponse(
        html, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )

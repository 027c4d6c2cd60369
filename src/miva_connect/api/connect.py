"""Browser entry point: a channel's link opens a session and lands on the session's page
(`miva_connect.web.pages`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import RedirectResponse

from miva_connect.api.deps import ClientAddress, OnboardingDep
from miva_connect.api.responses import errors

router = APIRouter(prefix="/connect", tags=["browser"])


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

"""Onboarding sessions: opened by a channel, completed by the merchant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from fastapi.responses import RedirectResponse

from miva_connect.api.deps import ClientAddress, CurrentChannel, OnboardingDep
from miva_connect.api.responses import errors
from miva_connect.api.schemas import (
    Connected,
    CredentialsSubmit,
    SessionCreate,
    SessionCreated,
    SessionRead,
    StoreUrlChecked,
    StoreUrlSubmit,
    WarningRead,
)
from miva_connect.onboarding.credentials import StoreCredentials

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])

SessionToken = Annotated[
    str, Path(alias="id", description="The session id from POST /v1/sessions.")
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 422),
    response_model=SessionCreated,
)
async def create_session(
    body: SessionCreate, channel: CurrentChannel, onboarding: OnboardingDep
) -> SessionCreated:
    """Open an onboarding session for a merchant (channel auth: HTTP Basic id:secret)."""
    opened = await onboarding.open_session(channel, body.state)
    return SessionCreated(
        id=opened.token,
        connect_url=opened.connect_url,
        expires_at=opened.expires_at,
        status="pending",
    )


@router.get("/{id}", responses=errors(404, 410))
async def read_session(token: SessionToken, onboarding: OnboardingDep) -> SessionRead:
    """The session's status: pending or connected (expired sessions answer 410)."""
    view = await onboarding.describe(token)
    return SessionRead(
        status="connected" if view.status == "connected" else "pending",
        expires_at=view.expires_at,
        store_url=view.store_url,
        merchant_id=view.merchant_id,
    )


@router.post("/{id}/store-url", responses=errors(404, 409, 410, 422, 429))
async def submit_store_url(
    token: SessionToken, body: StoreUrlSubmit, onboarding: OnboardingDep, client: ClientAddress
) -> StoreUrlChecked:
    """Normalise the store's Endpoint URL and confirm that it is a Miva JSON API."""
    endpoint = await onboarding.check_store_url(token, body.store_url, client)
    return StoreUrlChecked(store_url=endpoint)


@router.post("/{id}/credentials", responses=errors(404, 409, 410, 422, 429))
async def submit_credentials(
    token: SessionToken, body: CredentialsSubmit, onboarding: OnboardingDep, client: ClientAddress
) -> Connected:
    """Validate the credentials against the store, store them encrypted, connect the merchant."""
    connection = await onboarding.connect(
        token,
        StoreCredentials(
            store_url=body.store_url or "",
            store_code=body.store_code,
            api_key=body.api_key.get_secret_value(),
            signing_key=body.signing_key.get_secret_value(),
        ),
        client,
    )
    return Connected(
        status="connected",
        merchant_id=connection.merchant_id,
        store_name=connection.store_name,
        redirect_url=connection.redirect_url,
        warnings=[WarningRead(code=w.code, message=w.message) for w in connection.warnings],
    )


@router.get(
    "/{id}/redirect",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses=errors(404, 409, 410),
)
async def redirect_to_channel(token: SessionToken, onboarding: OnboardingDep) -> RedirectResponse:
    """Send the merchant back to the channel with `state` and `merchant_id`."""
    return RedirectResponse(await onboarding.redirect_url(token), status.HTTP_303_SEE_OTHER)

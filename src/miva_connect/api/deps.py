"""Dependencies: services from the lifespan state, and channel authentication.

All `async def`: FastAPI runs a plain `def` dependency on a worker thread, a thread hop
per dependency per request for what is an attribute lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from miva_connect.channels.service import ChannelService
from miva_connect.clientip import Network, client_address, rate_key
from miva_connect.db.models import Channel
from miva_connect.errors import Unauthorized
from miva_connect.health import Readiness
from miva_connect.onboarding.service import OnboardingService

_basic = HTTPBasic(auto_error=False, description="Channel id and secret.")


async def _onboarding(request: Request) -> OnboardingService:
    service: OnboardingService = request.state.onboarding
    return service


async def _channels(request: Request) -> ChannelService:
    service: ChannelService = request.state.channels
    return service


async def _client_address(request: Request) -> str:
    proxies: tuple[Network, ...] = request.state.trusted_proxies
    peer = request.client.host if request.client else None
    # Several X-Forwarded-For lines form one list (some proxies add a line of their own).
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    return rate_key(client_address(peer, forwarded, proxies))


async def _readiness(request: Request) -> Readiness:
    readiness: Readiness = request.state.readiness
    return readiness


OnboardingDep = Annotated[OnboardingService, Depends(_onboarding)]
ChannelsDep = Annotated[ChannelService, Depends(_channels)]
ReadinessDep = Annotated[Readiness, Depends(_readiness)]
ClientAddress = Annotated[str, Depends(_client_address)]


async def _current_channel(
    channels: ChannelsDep,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> Channel:
    if credentials is None:
        raise Unauthorized()
    return await channels.authenticate(credentials.username, credentials.password)


CurrentChannel = Annotated[Channel, Depends(_current_channel)]

"""What a channel may read about the merchants it connected."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from miva_connect.api.deps import ChannelsDep, CurrentChannel
from miva_connect.api.responses import errors
from miva_connect.api.schemas import MerchantRead

router = APIRouter(prefix="/v1/merchants", tags=["merchants"])


@router.get("/{merchant_id}", responses=errors(401, 404))
async def read_merchant(
    merchant_id: str, channel: CurrentChannel, channels: ChannelsDep
) -> MerchantRead:
    """A merchant connected through your channel. Never includes a secret."""
    return MerchantRead(**asdict(await channels.merchant(channel, merchant_id)))

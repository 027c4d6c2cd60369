"""Request and response bodies of the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from miva_connect.onboarding.service import MAX_STATE_LENGTH

# Lengths are checked by the services, so that each field has its own error code; the
# body limit (16 KiB) bounds them all before parsing.


class SessionCreate(BaseModel):
    state: str = Field(
        default="",
        description=f"Opaque, optional, up to {MAX_STATE_LENGTH} characters; returned unchanged.",
    )


class SessionCreated(BaseModel):
    id: str = Field(description="The session token: a bearer secret for the merchant's browser.")
    connect_url: str
    expires_at: datetime
    status: Literal["pending"]


class SessionRead(BaseModel):
    status: Literal["pending", "connected"]
    expires_at: datetime
    store_url: str | None
    merchant_id: str | None


class StoreUrlSubmit(BaseModel):
    store_url: str = Field(examples=["https://www.yourstore.com/mm5/json.mvc"])


class StoreUrlChecked(BaseModel):
    store_url: str


class CredentialsSubmit(BaseModel):
    store_code: str = Field(examples=["MYSTORE"])
    api_key: SecretStr = Field(description="The token's Access Token.")
    signing_key: SecretStr = Field(
        default=SecretStr(""), description="Base64; empty for tokens that accept unsigned calls."
    )
    store_url: str | None = Field(default=None, description="For clients that skip the URL step.")


class WarningRead(BaseModel):
    code: str
    message: str


class Connected(BaseModel):
    status: Literal["connected"]
    merchant_id: str
    store_name: str
    redirect_url: str
    warnings: list[WarningRead]


class MerchantRead(BaseModel):
    merchant_id: str
    store_url: str
    store_code: str
    store_name: str
    status: str
    verified_groups: list[str]
    signature_enforced: bool | None
    created_at: datetime
    updated_at: datetime
    connected_at: datetime


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    field: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail

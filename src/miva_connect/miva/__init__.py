"""Async client for the Miva Merchant JSON API: signing, calls, credential checks."""

from miva_connect.miva.auth import AUTH_HEADER, InvalidSigningKey, MivaAuth, decode_signing_key
from miva_connect.miva.client import MivaClient, encode_body, probe
from miva_connect.miva.errors import (
    AccessDenied,
    ApiError,
    ApiOffline,
    AuthenticationError,
    BlockedDestination,
    HttpStatusError,
    InvalidResponse,
    InvalidSignature,
    MivaError,
    Redirected,
    ResponseError,
    SignatureRequired,
    StalledMulticall,
    StoreNotFound,
    TimestampRejected,
    TokenDisabled,
    TransportError,
)
from miva_connect.miva.http import store_http_client
from miva_connect.miva.verify import ROLE_GROUP_PROBES, Verification, verify_credentials

__all__ = [
    "AUTH_HEADER",
    "ROLE_GROUP_PROBES",
    "AccessDenied",
    "ApiError",
    "ApiOffline",
    "AuthenticationError",
    "BlockedDestination",
    "HttpStatusError",
    "InvalidResponse",
    "InvalidSignature",
    "InvalidSigningKey",
    "MivaAuth",
    "MivaClient",
    "MivaError",
    "Redirected",
    "ResponseError",
    "SignatureRequired",
    "StalledMulticall",
    "StoreNotFound",
    "TimestampRejected",
    "TokenDisabled",
    "TransportError",
    "Verification",
    "decode_signing_key",
    "encode_body",
    "probe",
    "store_http_client",
    "verify_credentials",
]

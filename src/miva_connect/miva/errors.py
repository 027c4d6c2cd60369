"""Errors raised by the Miva JSON API client.

The tree lets callers catch at the level they care about:

    MivaError                   anything that went wrong talking to a store
    ├── TransportError          no HTTP answer: DNS, TCP, TLS, reset, timeout
    │   └── BlockedDestination  not sent: no address, or one the egress policy refuses
    ├── ResponseError           an HTTP answer, but not one from a Miva JSON API
    │   ├── Redirected          3xx; json.mvc never redirects, something in front does
    │   ├── HttpStatusError     any other non-2xx status (401/403 from a proxy, 404, 5xx)
    │   └── InvalidResponse     empty, not JSON, too large, or JSON without `success`
    │       └── StalledMulticall HTTP 206 with no new results: the store gave up, not the URL
    └── ApiError                the JSON API answered `success: 0`
        ├── ApiOffline          HTTP 503 `api_offline`: the API is switched off
        ├── StoreNotFound       `Store_Load` failed: the store code opens no store
        └── AuthenticationError the whole request was refused before any function ran
            ├── AccessDenied        unknown token, or caller IP not allowed (Miva cannot tell)
            ├── TokenDisabled
            ├── SignatureRequired   the token requires a signature and none was sent
            ├── InvalidSignature    wrong signing key (or altered body)
            └── TimestampRejected   missing, or outside the token's window

No error carries a token, a signing key or a request body. `ApiError.miva_message` is
the store's own text: attacker-controlled, for logs only, never for a merchant.
"""

from __future__ import annotations


class MivaError(Exception):
    """Base of every error this client raises."""


class TransportError(MivaError):
    """The store could not be reached, or did not answer in time."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlockedDestination(TransportError):
    """Nothing was sent: the host did not resolve, or to an address the policy refuses.

    A subclass of `TransportError` so that callers answer it exactly like an unreachable
    store: telling the two apart would let anyone map our internal network.
    """


class ResponseError(MivaError):
    """The endpoint answered, but not as a Miva JSON API does."""


class Redirected(ResponseError):
    """The endpoint answered with a redirect, which we never follow."""

    def __init__(self, status_code: int, location: str | None) -> None:
        super().__init__(f"HTTP {status_code} redirect")
        self.status_code = status_code
        self.location = location


class HttpStatusError(ResponseError):
    """The endpoint answered with a non-2xx status that json.mvc itself never sends."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class InvalidResponse(ResponseError):
    """The body is empty, too large, not JSON, or JSON without a `success` member."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StalledMulticall(InvalidResponse):
    """A partial (HTTP 206) multicall reply that brought no new results.

    Miva sends 206 only after completing at least one operation, so this is a store that
    stops short, not an address that is no Miva JSON API: worth retrying later.
    """


class ApiError(MivaError):
    """The JSON API answered `success: 0`."""

    def __init__(self, code: str, miva_message: str) -> None:
        super().__init__(code)
        self.code = code
        self.miva_message = miva_message


class ApiOffline(ApiError):
    """The store's JSON API is switched off (HTTP 503 `api_offline`)."""


class StoreNotFound(ApiError):
    """`Store_Load` failed for a valid token: the store code opens no store."""


class AuthenticationError(ApiError):
    """The request was refused as a whole, before any function ran."""


class AccessDenied(AuthenticationError):
    """Unknown access token, or the caller's IP is not in the token's allowed list."""


class TokenDisabled(AuthenticationError):
    """The access token exists but is disabled."""


class SignatureRequired(AuthenticationError):
    """The token requires a signature and the request was unsigned."""


class InvalidSignature(AuthenticationError):
    """The signature does not match: wrong signing key."""


class TimestampRejected(AuthenticationError):
    """The token requires a timestamp, and it was missing or outside the window."""


# Miva answers every whole-request refusal with `access_denied`; only the message differs.
_ACCESS_DENIED_MESSAGES: dict[str, type[AuthenticationError]] = {
    "access denied": AccessDenied,
    "token is disabled": TokenDisabled,
    # Sic: Miva's text for "this token requires a signature" mentions the timestamp.
    "timestamp requires request signature": SignatureRequired,
    "invalid request signature": InvalidSignature,
    "missing required timestamp": TimestampRejected,
    "timestamp outside configured window": TimestampRejected,
}


def api_error_from(payload: dict[str, object]) -> ApiError:
    """Build the most specific `ApiError` for a `success: 0` payload."""
    code = str(payload.get("error_code") or "")
    message = str(payload.get("error_message") or "")
    if code == "api_offline":
        return ApiOffline(code, message)
    if code == "access_denied":
        kind = _ACCESS_DENIED_MESSAGES.get(message.strip().lower(), AuthenticationError)
        return kind(code, message)
    return ApiError(code, message)

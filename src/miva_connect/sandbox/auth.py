"""Token authentication of json.mvc API requests, in the order Miva's `JSON_API` checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from miva_connect.sandbox.config import Sandbox, SandboxToken

AUTH_HEADER = "X-Miva-API-Authorization"

# Token auth types and their HMAC digests (None: the unsigned `MIVA` type).
TOKEN_TYPES: Mapping[str, str | None] = {
    "MIVA": None,
    "MIVA-HMAC-SHA1": "sha1",
    "MIVA-HMAC-SHA256": "sha256",
}
# User-based SSH types; the sandbox has no admin users, so every such user is unknown.
SSH_TYPES = frozenset({"SSH-RSA-SHA2-256", "SSH-RSA-SHA2-512"})


@dataclass(frozen=True)
class AuthFailure:
    """Why a request is refused as a whole; `delay` mirrors Miva's FailedLoginDelay."""

    message: str
    delay: bool = False


@dataclass(frozen=True)
class ApiRequest:
    """What the auth checks look at, taken from one HTTP request."""

    method: str
    content_type: str
    authorization: str
    body: bytes
    timestamp: object
    client_ip: str


def authenticate(sandbox: Sandbox, request: ApiRequest, now: float) -> SandboxToken | AuthFailure:
    """The token that may run this request, or the reason it may not."""
    if request.method != "POST":
        return AuthFailure("Invalid request method")
    # Miva compares the first 16 characters with "application/json".
    if request.content_type[:16] != "application/json":
        return AuthFailure("Invalid request content type")
    # The server splits on single spaces and colons, so stray ones break the credential.
    kind, _, credential = request.authorization.partition(" ")
    kind = kind.upper()
    credential = credential.split(" ")[0]
    if kind in SSH_TYPES:
        return AuthFailure("Access denied", delay=True)
    if kind not in TOKEN_TYPES:
        return AuthFailure("Unrecognized authorization type")
    access_token, _, rest = credential.partition(":")
    signature = rest.split(":")[0]
    token = sandbox.tokens.get(access_token) if access_token else None
    if token is None or not ip_allowed(request.client_ip, token.allowed_ips):
        return AuthFailure("Access denied", delay=True)
    if token.disabled:
        return AuthFailure("Token is disabled")
    if token.require_timestamp:
        failure = check_timestamp(request.timestamp, token.timestamp_window, now)
        if failure:
            return failure
    if token.require_signature:
        digest = TOKEN_TYPES[kind]
        if digest is None:
            # Sic: Miva's text says "Timestamp" where it means "Token".
            return AuthFailure("Timestamp requires request signature")
        if not signature_matches(token.signing_key, digest, request.body, signature):
            return AuthFailure("Invalid request signature")
    return token


def check_timestamp(value: object, window: int, now: float) -> AuthFailure | None:
    """Miva's `Miva_Request_Timestamp` check: present, and within `window` seconds of now."""
    if value is None or value == "":
        return AuthFailure("Missing required timestamp")
    if abs(_number(value) - now) > window:
        return AuthFailure("Timestamp outside configured window")
    return None


def _number(value: object) -> float:
    # Miva coerces anything non-numeric to 0, which then lies far outside any window.
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def signature_matches(signing_key: str, digest: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is the Base64 HMAC of the raw body under the decoded key."""
    expected = hmac.new(_b64decode(signing_key), body, getattr(hashlib, digest)).digest()
    return hmac.compare_digest(expected, _b64decode(signature))


def _b64decode(text: str) -> bytes:
    padded = text.strip() + "=" * (-len(text.strip()) % 4)
    try:
        return base64.b64decode(padded)
    except (binascii.Error, ValueError):
        return b""


def ip_allowed(client_ip: str, allowed: str) -> bool:
    """Miva's `IP_In_CIDR_IP_List`: bare IPs are /32 or /128, invalid entries are skipped."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    for entry in allowed.split(","):
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            continue
        # An IPv4 entry never matches an IPv6 caller, nor the other way round.
        if network.version == address.version and address in network:
            return True
    return False

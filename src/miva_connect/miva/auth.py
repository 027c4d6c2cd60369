"""Authentication of Miva JSON API requests, as an `httpx.Auth`.

Miva signs the raw request body, byte for byte, with HMAC keyed by the
Base64-decoded Signing Key, and sends the standard-Base64 digest in
`X-Miva-API-Authorization: MIVA-HMAC-SHA256 <token>:<digest>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Generator
from typing import Literal

import httpx

AUTH_HEADER = "X-Miva-API-Authorization"

Digest = Literal["sha256", "sha1"]


class InvalidSigningKey(ValueError):
    """The signing key is not strict standard Base64."""


def decode_signing_key(value: str) -> bytes:
    """Decode a Signing Key as the Miva admin shows it; missing `=` padding is fine.

    Strict on purpose: Python's lenient decoder silently drops characters outside the
    alphabet (URL-safe `-`/`_`, inner spaces), which would yield a different key and an
    "Invalid request signature" that no merchant could explain.
    """
    text = value.strip()
    if not text:
        return b""
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSigningKey("signing key is not valid Base64") from None
    if not key:
        raise InvalidSigningKey("signing key is empty after decoding")
    return key


class MivaAuth(httpx.Auth):
    """Sets `X-Miva-API-Authorization` for an access token and optional signing key.

    With no signing key the header is the unsigned `MIVA <token>` form.
    """

    requires_request_body = True

    def __init__(self, access_token: str, signing_key: bytes = b"", digest: Digest = "sha256"):
        if not access_token or any(c.isspace() or c == ":" for c in access_token):
            # The server splits the header on the first space and on ':'.
            raise ValueError("access token must be non-empty, without spaces or ':'")
        self._token = access_token
        self._key = signing_key
        self._digest = digest

    @property
    def signed(self) -> bool:
        return bool(self._key)

    def header_value(self, body: bytes) -> str:
        """The header value for exactly these body bytes."""
        if not self._key:
            return f"MIVA {self._token}"
        mac = hmac.new(self._key, body, getattr(hashlib, self._digest)).digest()
        kind = f"MIVA-HMAC-{self._digest.upper()}"
        return f"{kind} {self._token}:{base64.b64encode(mac).decode('ascii')}"

    def unsigned(self) -> MivaAuth:
        """The same token without a signature."""
        return MivaAuth(self._token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[AUTH_HEADER] = self.header_value(request.content)
        yield request

    def __repr__(self) -> str:
        return f"MivaAuth(signed={self.signed}, digest={self._digest!r})"

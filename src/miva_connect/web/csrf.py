"""CSRF defences of the forms: a token bound to the session, and the browser's origin headers."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.datastructures import Headers

_LABEL = b"miva-connect web form v1"


def form_token(session_token: str) -> str:
    """The hidden form field of a session's forms: HMAC-SHA256 keyed by the session token.

    Only whoever holds the session token (its page) can compute it; it reveals nothing of it.
    """
    return hmac.new(session_token.encode("utf-8"), _LABEL, hashlib.sha256).hexdigest()


def token_matches(session_token: str, submitted: str) -> bool:
    return hmac.compare_digest(form_token(session_token).encode(), submitted.encode("utf-8"))


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin_request(headers: Headers, public_url: str) -> bool:
    """False when the browser says the request came from another site or origin.

    Our pages send `Referrer-Policy: no-referrer`, under which Chromium posts forms with
    `Origin: null`; `Sec-Fetch-Site` is not affected, so `null` passes only when that
    header says same-origin.
    """
    fetch_site = headers.get("sec-fetch-site", "").lower()
    if fetch_site in ("cross-site", "same-site"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return fetch_site == "same-origin"
    return origin.lower() == origin_of(public_url)

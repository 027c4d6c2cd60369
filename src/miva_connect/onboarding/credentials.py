"""Credentials as a merchant submits them: trimmed and format-checked before any network call."""

from __future__ import annotations

from dataclasses import dataclass

from miva_connect import miva
from miva_connect.egress import AddressPolicy
from miva_connect.errors import ValidationFailed
from miva_connect.onboarding.messages import message
from miva_connect.onboarding.store_url import StoreUrlError, normalise_store_url

MAX_STORE_CODE_LENGTH = 64
MAX_API_KEY_LENGTH = 256
MAX_SIGNING_KEY_LENGTH = 256


@dataclass(frozen=True)
class StoreCredentials:
    """The four values of the onboarding form. The repr hides the secrets."""

    store_url: str
    store_code: str
    api_key: str
    signing_key: str

    @property
    def store_code_key(self) -> str:
        """Miva looks store codes up case-insensitively: one merchant per upper-cased code."""
        return self.store_code.upper()

    def __repr__(self) -> str:
        return f"StoreCredentials(store_url={self.store_url!r}, store_code={self.store_code!r})"


def endpoint_for(raw_url: str, *, policy: AddressPolicy) -> str:
    """The normalised endpoint, or `ValidationFailed` saying what is wrong with the URL."""
    try:
        return normalise_store_url(raw_url, policy=policy)
    except StoreUrlError as error:
        text = (
            message("store_url_not_allowed", reason=error.reason)
            if error.code == "store_url_not_allowed"
            else message("invalid_store_url")
        )
        raise ValidationFailed(text, code=error.code, field="store_url") from None


def prepare_credentials(
    submitted: StoreCredentials, fallback_url: str | None, *, policy: AddressPolicy
) -> StoreCredentials:
    """Trim pasted whitespace, normalise the URL, and check every format."""
    raw_url = submitted.store_url.strip() or fallback_url
    if not raw_url:
        raise ValidationFailed(
            message("store_url_required"), code="store_url_required", field="store_url"
        )
    credentials = StoreCredentials(
        store_url=endpoint_for(raw_url, policy=policy),
        store_code=submitted.store_code.strip(),
        api_key=submitted.api_key.strip(),
        signing_key=submitted.signing_key.strip(),
    )
    _check_store_code(credentials.store_code)
    _check_api_key(credentials.api_key)
    _check_signing_key(credentials.signing_key)
    return credentials


def _check_store_code(code: str) -> None:
    # ASCII only: store codes are compared upper-cased, and `"ß".upper()` is two letters.
    if not 0 < len(code) <= MAX_STORE_CODE_LENGTH or not all("!" <= c <= "~" for c in code):
        raise ValidationFailed(
            message("invalid_store_code_format"), code="invalid_store_code", field="store_code"
        )


def _check_api_key(key: str) -> None:
    # Miva splits its auth header on spaces and ':', so neither can be part of a token.
    if (
        not key
        or len(key) > MAX_API_KEY_LENGTH
        or not key.isprintable()
        or any(c.isspace() or c == ":" for c in key)
    ):
        raise ValidationFailed(message("invalid_api_key"), code="invalid_api_key", field="api_key")


def _check_signing_key(key: str) -> None:
    try:
        if len(key) > MAX_SIGNING_KEY_LENGTH:
            raise miva.InvalidSigningKey("too long")
        miva.decode_signing_key(key)
    except miva.InvalidSigningKey:
        raise ValidationFailed(
            message("invalid_signing_key"), code="invalid_signing_key", field="signing_key"
        ) from None

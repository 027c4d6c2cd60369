"""Run the checks against a store within the deadline, and say what a merchant must fix."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
import structlog

from miva_connect import miva
from miva_connect.errors import ValidationFailed
from miva_connect.onboarding.credentials import StoreCredentials
from miva_connect.onboarding.messages import NOT_MIVA_DETAILS, allowed_ips_text, message
from miva_connect.onboarding.results import Notice

log = structlog.get_logger(__name__)
T = TypeVar("T")
_HOST = re.compile(r"[A-Za-z0-9.:-]{1,255}")
_MIVA_CODE = re.compile(r"access_denied|api_offline|invalid_function|MER-[A-Z0-9-]{1,40}")

_AUTH_FAILURES: dict[type[miva.MivaError], tuple[str, str | None]] = {
    miva.AccessDenied: ("access_denied", "api_key"),
    miva.TokenDisabled: ("token_disabled", "api_key"),
    miva.InvalidSignature: ("invalid_signature", "signing_key"),
    miva.SignatureRequired: ("signature_required", "signing_key"),
    miva.TimestampRejected: ("timestamp_rejected", None),
    miva.StoreNotFound: ("invalid_store_code", "store_code"),
    miva.ApiOffline: ("store_api_offline", "store_url"),
}


def warnings_for(verification: miva.Verification) -> list[Notice]:
    """What a merchant should know although the store accepted the credentials."""
    if verification.signature_enforced is False:
        return [Notice("signature_not_enforced", message("signature_not_enforced"))]
    return []


class StoreValidator:
    """Talks to a store through the shared HTTP client, bounded by one overall deadline."""

    def __init__(self, http: httpx.AsyncClient, *, deadline: float, egress_ips: Sequence[str]):
        self._http = http
        self._deadline = deadline
        self._egress_ips = tuple(egress_ips)

    async def check_endpoint(self, endpoint: str) -> None:
        """Confirm that the endpoint is a Miva JSON API; raise `ValidationFailed` if not."""
        await self._bounded(miva.probe(self._http, endpoint))

    async def verify(self, credentials: StoreCredentials) -> miva.Verification:
        """Ask the store whether it accepts the credentials; raise `ValidationFailed` if not."""
        auth = miva.MivaAuth(credentials.api_key, miva.decode_signing_key(credentials.signing_key))
        client = miva.MivaClient(self._http, credentials.store_url, credentials.store_code, auth)
        verification = await self._bounded(miva.verify_credentials(client))
        if verification.missing_groups:
            groups = list(verification.missing_groups)
            raise ValidationFailed(
                message("missing_permissions", groups=", ".join(groups)),
                code="missing_permissions",
                extra={"missing_groups": groups},
            )
        return verification

    async def _bounded(self, work: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._deadline):
                return await work
        except TimeoutError:
            raise self._failure(miva.TransportError("deadline")) from None
        except miva.MivaError as error:
            raise self._failure(error) from None

    def _failure(self, error: miva.MivaError) -> ValidationFailed:
        log.info("miva.check.failed", error=type(error).__name__, **_details(error))
        for kind, (code, field) in _AUTH_FAILURES.items():
            if isinstance(error, kind):
                ips = allowed_ips_text(self._egress_ips)
                return ValidationFailed(
                    message(code, ips=ips),
                    code=code,
                    field=field,
                    extra={"egress_ips": list(self._egress_ips)}
                    if code == "access_denied"
                    else None,
                )
        if isinstance(error, miva.TransportError):
            return _store_url_failure("store_unreachable")
        if isinstance(error, miva.Redirected):
            location = _origin(error.location)
            return _store_url_failure(
                "store_redirected", location=location, extra={"location": location}
            )
        if isinstance(error, miva.StalledMulticall):
            return ValidationFailed(message("store_error"), code="store_error")
        if isinstance(error, miva.InvalidResponse):
            return _store_url_failure("not_a_miva_store", detail="")
        if isinstance(error, miva.HttpStatusError) and error.status_code in NOT_MIVA_DETAILS:
            return _store_url_failure(
                "not_a_miva_store", detail=NOT_MIVA_DETAILS[error.status_code]
            )
        return ValidationFailed(message("store_error"), code="store_error")


def _store_url_failure(
    code: str, extra: dict[str, object] | None = None, **values: str
) -> ValidationFailed:
    return ValidationFailed(message(code, **values), code=code, field="store_url", extra=extra)


def _origin(location: str | None) -> str:
    """Scheme, host and port of a redirect: enough to fix the URL, no room for other text."""
    try:
        parts = urlsplit(location or "")
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "another address"
    if parts.scheme not in ("http", "https") or not _HOST.fullmatch(host):
        return "another address"
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port else "")


def _details(error: miva.MivaError) -> dict[str, object]:
    """Facts for the log line. The store's own texts are untrusted (they could even echo
    what we sent), so only error codes of Miva's known shapes are kept."""
    if isinstance(error, miva.ApiError):
        known = _MIVA_CODE.fullmatch(error.code)
        return {"miva_error_code": error.code if known else "(unrecognised)"}
    if isinstance(error, miva.HttpStatusError | miva.Redirected):
        return {"status_code": error.status_code}
    if isinstance(error, miva.TransportError | miva.InvalidResponse):
        return {"reason": error.reason}
    return {}

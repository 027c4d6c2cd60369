"""A small async client for one store's Miva JSON API endpoint (`.../json.mvc`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from miva_connect import __version__
from miva_connect.miva.auth import AUTH_HEADER, MivaAuth
from miva_connect.miva.errors import (
    ApiOffline,
    HttpStatusError,
    InvalidResponse,
    Redirected,
    TransportError,
    api_error_from,
)

MAX_RESPONSE_BYTES = 1 << 20
USER_AGENT = f"miva-connect/{__version__}"
# An auth type Miva does not know: json.mvc answers it at once (no failed-login delay)
# with `access_denied` / "Unrecognized authorization type", which proves it is json.mvc.
PROBE_AUTHORIZATION = "MIVA-CONNECT-PROBE probe"

Payload = dict[str, Any]


def encode_body(members: Mapping[str, object]) -> bytes:
    """Compact JSON bytes: what is sent is exactly what is signed."""
    return json.dumps(members, separators=(",", ":")).encode("ascii")


def is_success(payload: Mapping[str, object]) -> bool:
    """Miva sends `success` as 1/0, and a few functions as true/false."""
    return payload.get("success") in (1, True)


class MivaClient:
    """Calls one store's endpoint with one access token (and optional signing key)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        endpoint: str,
        store_code: str,
        auth: MivaAuth,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self.endpoint = endpoint
        self.store_code = store_code
        self.auth = auth
        self._clock = clock

    def with_auth(self, auth: MivaAuth) -> MivaClient:
        """The same endpoint and store code with other credentials."""
        return MivaClient(self._http, self.endpoint, self.store_code, auth, clock=self._clock)

    async def call(self, function: str, **params: object) -> Payload:
        """Run one function; return the success payload or raise an `ApiError`."""
        body = self._body({"Function": function, **params})
        _, payload = await _exchange(self._http, self.endpoint, body, auth=self.auth)
        if not isinstance(payload, dict):
            raise InvalidResponse("expected a JSON object")
        if not is_success(payload):
            raise api_error_from(payload)
        return payload

    async def multicall(self, operations: Sequence[Mapping[str, object]]) -> list[Payload]:
        """Run operations in one request; return one raw result per operation.

        A refusal of the whole request raises; per-operation failures are returned
        as they are. HTTP 206 partial replies are continued with a `Range` header.
        """
        body = self._body({"Operations": list(operations)})
        total = len(operations)
        results: list[Payload] = []
        while True:
            headers = {"Range": f"Operations={len(results) + 1}-{total}"} if results else {}
            status, payload = await _exchange(
                self._http, self.endpoint, body, auth=self.auth, headers=headers
            )
            if isinstance(payload, dict):
                if not is_success(payload):
                    raise api_error_from(payload)  # refused as a whole: one object
                raise InvalidResponse("expected a JSON array for a multicall")
            if not payload and status == 206:
                raise InvalidResponse("partial multicall reply with no progress")
            results.extend(_objects(payload))
            if status != 206 or len(results) >= total:
                return results[:total]

    def _body(self, members: Mapping[str, object]) -> bytes:
        # A fresh timestamp per request: a token with a timestamp window rejects stale ones.
        return encode_body(
            {
                "Store_Code": self.store_code,
                **members,
                "Miva_Request_Timestamp": int(self._clock()),
            }
        )


async def probe(http: httpx.AsyncClient, endpoint: str) -> None:
    """Return if `endpoint` answers like a Miva JSON API; raise a `MivaError` if not."""
    _, payload = await _exchange(
        http, endpoint, b"{}", auth=None, headers={AUTH_HEADER: PROBE_AUTHORIZATION}
    )
    if not isinstance(payload, dict):
        raise InvalidResponse("expected a JSON object")


async def _exchange(
    http: httpx.AsyncClient,
    endpoint: str,
    body: bytes,
    *,
    auth: MivaAuth | None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Payload | list[Any]]:
    request = http.build_request(
        "POST",
        endpoint,
        content=body,
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **(headers or {}),
        },
    )
    try:
        response = await http.send(request, auth=auth, stream=True, follow_redirects=False)
        try:
            content = await _read_body(response)
        finally:
            await response.aclose()
    except httpx.DecodingError:
        raise InvalidResponse("undecodable content encoding") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise TransportError(type(exc).__name__) from exc
    return response.status_code, _decode(response, content)


async def _read_body(response: httpx.Response) -> bytes:
    if response.is_redirect or response.status_code not in (200, 206, 503):
        return b""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise InvalidResponse("response larger than 1 MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(response: httpx.Response, content: bytes) -> Payload | list[Any]:
    status = response.status_code
    if 300 <= status < 400:
        raise Redirected(status, response.headers.get("Location"))
    if status == 503:
        payload = _parse(content, strict=False)
        if isinstance(payload, dict) and payload.get("error_code") == "api_offline":
            raise ApiOffline("api_offline", str(payload.get("error_message") or ""))
        raise HttpStatusError(status)
    if status not in (200, 206):
        raise HttpStatusError(status)
    payload = _parse(content, strict=True)
    if isinstance(payload, dict) and "success" not in payload:
        raise InvalidResponse("JSON without a `success` member")
    if not isinstance(payload, dict | list):
        raise InvalidResponse("JSON that is neither an object nor an array")
    return payload


def _parse(content: bytes, *, strict: bool) -> Any:
    if not content.strip():
        if strict:
            raise InvalidResponse("empty body")
        return None
    try:
        return json.loads(content)
    # RecursionError: deeply nested arrays/objects, which any endpoint can send.
    except (ValueError, RecursionError):
        if strict:
            raise InvalidResponse("body is not JSON") from None
        return None


def _objects(items: list[Any]) -> list[Payload]:
    if not all(isinstance(item, dict) for item in items):
        raise InvalidResponse("multicall results must be JSON objects")
    return items

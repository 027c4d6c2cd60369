"""A small async client for one store's Miva JSON API endpoint (`.../json.mvc`)."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import httpx

from miva_connect import __version__
from miva_connect.egress import DestinationRefused
from miva_connect.miva.auth import AUTH_HEADER, MivaAuth
from miva_connect.miva.errors import (
    ApiOffline,
    BlockedDestination,
    HttpStatusError,
    InvalidResponse,
    Redirected,
    StalledMulticall,
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
                raise StalledMulticall("partial multicall reply with no progress")
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
    try:
        # Inside the try: httpx refuses some hosts (`0177.0.0.1`) only when parsing the URL.
        request = http.build_request(
            "POST",
            endpoint,
            content=body,
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                # Only what `_read_body` decodes, whatever compression libraries are installed.
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": USER_AGENT,
                **(headers or {}),
            },
        )
        response = await http.send(request, auth=auth, stream=True, follow_redirects=False)
        try:
            content = await _read_body(response)
        finally:
            await response.aclose()
    except httpx.DecodingError:
        raise InvalidResponse("undecodable content encoding") from None
    except DestinationRefused as exc:
        raise BlockedDestination(exc.reason) from exc
    # UnicodeError: a host that passed our checks but not httpx's IDNA 2008 encoding
    # (`xn--rk8d`); no such name can be registered, so nothing could answer there.
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        raise TransportError(type(exc).__name__) from exc
    return response.status_code, _decode(response, content)


async def _read_body(response: httpx.Response) -> bytes:
    if response.is_redirect or response.status_code not in (200, 206, 503):
        return b""
    # Raw bytes, decoded here: httpx inflates each network chunk in one go, and through
    # every layer of `Content-Encoding: gzip, gzip, ...`, so 200 bytes could become
    # gigabytes in memory (and seconds of blocked event loop) before any size check.
    inflate = _inflater(response.headers)
    chunks: list[bytes] = []
    size = 0
    async for raw in _raw_chunks(response):
        chunk = inflate(raw, MAX_RESPONSE_BYTES + 1 - size)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise InvalidResponse("response larger than 1 MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _raw_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    if not response.is_stream_consumed:
        return response.aiter_raw()
    # Read up front by whoever built the response (a test transport's `content=`): its
    # stream still holds the raw bytes.
    assert isinstance(response.stream, httpx.AsyncByteStream)
    return response.stream.__aiter__()


def _inflater(headers: httpx.Headers) -> Callable[[bytes, int], bytes]:
    """Decodes the body's one content coding, never producing more than asked for."""
    codings = [
        coding
        for value in headers.get_list("content-encoding", split_commas=True)
        if (coding := value.strip().lower()) not in ("", "identity")
    ]
    if not codings:
        return lambda data, _limit: data
    if codings not in (["gzip"], ["deflate"]):
        raise InvalidResponse("unsupported content encoding")
    # gzip; or deflate, which servers send with or without its zlib header.
    wbits = [zlib.MAX_WBITS | 16] if codings == ["gzip"] else [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    decoder = zlib.decompressobj(wbits.pop(0))
    started = False

    def inflate(data: bytes, limit: int) -> bytes:
        nonlocal decoder, started
        while True:
            try:
                # At most `limit` bytes; input left over means the limit was reached.
                out = decoder.decompress(data, limit)
            except zlib.error:
                if started or not wbits:
                    raise InvalidResponse("undecodable content encoding") from None
                decoder = zlib.decompressobj(wbits.pop(0))
                continue
            started = True
            return out

    return inflate


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

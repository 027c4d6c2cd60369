"""`MivaClient` and `probe` against a fake json.mvc behind `httpx.MockTransport`."""

import gzip
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from miva_connect.miva import (
    AUTH_HEADER,
    AccessDenied,
    ApiError,
    ApiOffline,
    AuthenticationError,
    HttpStatusError,
    InvalidResponse,
    InvalidSignature,
    MivaAuth,
    MivaClient,
    Redirected,
    ResponseError,
    SignatureRequired,
    TimestampRejected,
    TokenDisabled,
    TransportError,
    probe,
)

ENDPOINT = "https://shop.example.com/mm5/json.mvc"
TOKEN = "0123456789abcdef0123456789abcdef"
KEY = b"example-signing-key-32-bytes!!!!"
NOW = 1_700_000_000
MIB = 1 << 20

Reply = httpx.Response | Exception


@dataclass
class FakeStore:
    """Answers each request with the next scripted reply and records what was sent."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
async def miva(store: FakeStore) -> AsyncIterator[MivaClient]:
    # follow_redirects=True on purpose: the client must refuse redirects per request anyway.
    transport = httpx.MockTransport(store.handle)
    ticks = itertools.count(NOW)  # one second later at every reading of the clock
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as http:
        yield MivaClient(http, ENDPOINT, "SC", MivaAuth(TOKEN, KEY), clock=lambda: next(ticks))


def ok(data: object = None) -> httpx.Response:
    return httpx.Response(200, json={"success": 1, "data": data})


def failure(code: str, message: str) -> httpx.Response:
    return httpx.Response(200, json={"success": 0, "error_code": code, "error_message": message})


class Chunked(httpx.AsyncByteStream):
    """A body that arrives in network-sized chunks (`content=` would be read up front)."""

    def __init__(self, body: bytes, size: int = 64 * 1024) -> None:
        self.body, self.size = body, size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), self.size):
            yield self.body[start : start + self.size]


class ResetAfterFirstChunk(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"success":'
        raise httpx.ReadError("connection reset by peer")


class TestOutgoingRequest:
    async def test_is_a_signed_compact_json_post(self, store: FakeStore, miva: MivaClient) -> None:
        store.reply(ok())
        await miva.call("Store_Load")

        [request] = store.requests
        assert request.method == "POST"
        assert str(request.url) == ENDPOINT
        assert request.url.path == "/mm5/json.mvc"
        assert request.url.query == b""
        assert request.headers["Content-Type"] == "application/json"
        assert request.content == (
            b'{"Store_Code":"SC","Function":"Store_Load","Miva_Request_Timestamp":1700000000}'
        )
        # Reference section 2.6: the same token, key and bytes give this exact header.
        assert request.headers[AUTH_HEADER] == (
            f"MIVA-HMAC-SHA256 {TOKEN}:iM/w8vAvZIWf+QEwNEeSZE22Mdw8z6D068wUILald3U="
        )

    async def test_params_go_in_the_body_between_function_and_timestamp(
        self, store: FakeStore, miva: MivaClient
    ) -> None:
        store.reply(ok())
        await miva.call("ProductList_Load_Query", Count=1, Offset=0)

        assert json.loads(store.requests[0].content) == {
            "Store_Code": "SC",
            "Function": "ProductList_Load_Query",
            "Count": 1,
            "Offset": 0,
            "Miva_Request_Timestamp": NOW,
        }

    async def test_timestamp_is_whole_seconds_read_at_each_call(self) -> None:
        times = iter([NOW + 0.9, NOW + 61.2])
        sent: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return ok()

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            miva = MivaClient(http, ENDPOINT, "SC", MivaAuth(TOKEN), clock=lambda: next(times))
            await miva.call("Store_Load")
            await miva.call("Store_Load")

        stamps = [json.loads(r.content)["Miva_Request_Timestamp"] for r in sent]
        assert stamps == [NOW, NOW + 61]
        assert sent[0].headers[AUTH_HEADER] == f"MIVA {TOKEN}"


class TestCall:
    @pytest.mark.parametrize("success", [1, True])
    async def test_returns_the_success_payload(
        self, store: FakeStore, miva: MivaClient, success: object
    ) -> None:
        store.reply(httpx.Response(200, json={"success": success, "data": {"code": "SC"}}))
        assert await miva.call("Store_Load") == {"success": success, "data": {"code": "SC"}}

    @pytest.mark.parametrize(
        ("message", "error"),
        [
            ("Access denied", AccessDenied),
            ("Token is disabled", TokenDisabled),
            ("Timestamp requires request signature", SignatureRequired),
            ("Invalid request signature", InvalidSignature),
            ("Missing required timestamp", TimestampRejected),
            ("Timestamp outside configured window", TimestampRejected),
        ],
    )
    async def test_access_denied_messages_map_to_their_error(
        self, store: FakeStore, miva: MivaClient, message: str, error: type[AuthenticationError]
    ) -> None:
        store.reply(failure("access_denied", message))
        with pytest.raises(error) as caught:
            await miva.call("Store_Load")
        assert (caught.value.code, caught.value.miva_message) == ("access_denied", message)

    async def test_unknown_access_denied_message_is_a_plain_authentication_error(
        self, store: FakeStore, miva: MivaClient
    ) -> None:
        store.reply(failure("access_denied", "Unrecognized authorization type"))
        with pytest.raises(AuthenticationError) as caught:
            await miva.call("Store_Load")
        assert type(caught.value) is AuthenticationError

    @pytest.mark.parametrize("success", [0, False])
    async def test_other_failures_are_a_plain_api_error(
        self, store: FakeStore, miva: MivaClient, success: object
    ) -> None:
        payload = {"success": success, "error_code": "invalid_function", "error_message": "x"}
        store.reply(httpx.Response(200, json=payload))
        with pytest.raises(ApiError) as caught:
            await miva.call("No_Such_Function")
        assert type(caught.value) is ApiError
        assert caught.value.code == "invalid_function"

    async def test_a_json_array_is_not_a_call_reply(
        self, store: FakeStore, miva: MivaClient
    ) -> None:
        store.reply(httpx.Response(200, json=[{"success": 1}]))
        with pytest.raises(InvalidResponse):
            await miva.call("Store_Load")


class TestMulticall:
    async def test_returns_one_result_per_operation(
        self, store: FakeStore, miva: MivaClient
    ) -> None:
        denied = {"success": 0, "error_code": "access_denied", "error_message": "Access denied"}
        store.reply(httpx.Response(200, json=[{"success": 1, "data": {}}, denied]))

        results = await miva.multicall(
            [{"Function": "Store_Load"}, {"Function": "OrderList_Load_Query", "Count": 1}]
        )

        assert results == [{"success": 1, "data": {}}, denied]
        assert json.loads(store.requests[0].content) == {
            "Store_Code": "SC",
            "Operations": [
                {"Function": "Store_Load"},
                {"Function": "OrderList_Load_Query", "Count": 1},
            ],
            "Miva_Request_Timestamp": NOW,
        }

    async def test_whole_reply_error_object_raises(
        self, store: FakeStore, miva: MivaClient
    ) -> None:
        store.reply(failure("access_denied", "Invalid request signature"))
        with pytest.raises(InvalidSignature):
            await miva.multicall([{"Function": "Store_Load"}])

    async def test_partial_reply_is_continued_with_identical_bytes(
        self, store: FakeStore, miva: MivaClient
    ) -> None:
        first, second, third = ({"success": 1, "data": {"n": n}} for n in (1, 2, 3))
        store.reply(
            httpx.Response(206, json=[first], headers={"Content-Range": "1/3"}),
            httpx.Response(200, json=[second, third]),
        )

        results = await miva.multicall([{"Function": "Store_Load"}] * 3)

        assert results == [first, second, third]
        initial, continued = store.requests
        assert "Range" not in initial.headers
        assert continued.headers["Range"] == "Operations=2-3"
        assert continued.content == initial.content
        assert continued.headers[AUTH_HEADER] == initial.headers[AUTH_HEADER]

    async def test_partial_reply_without_progress_raises(
        self, store: FakeStore, miva: MivaClient
    ) -> None:
        store.reply(httpx.Response(206, json=[], headers={"Content-Range": "0/2"}))
        with pytest.raises(InvalidResponse):
            await miva.multicall([{"Function": "Store_Load"}] * 2)
        assert len(store.requests) == 1


class TestHttpAnswers:
    @pytest.mark.parametrize("status", [301, 302, 307, 308])
    async def test_redirects_are_reported_not_followed(
        self, store: FakeStore, miva: MivaClient, status: int
    ) -> None:
        location = "https://www.shop.example.com/mm5/json.mvc"
        store.reply(httpx.Response(status, headers={"Location": location}), ok())

        with pytest.raises(Redirected) as caught:
            await miva.call("Store_Load")

        assert (caught.value.status_code, caught.value.location) == (status, location)
        assert len(store.requests) == 1

    @pytest.mark.parametrize("status", [401, 403, 404, 500, 502])
    async def test_non_miva_statuses_raise(
        self, store: FakeStore, miva: MivaClient, status: int
    ) -> None:
        store.reply(httpx.Response(status, json={"success": 0, "error_code": "x"}))
        with pytest.raises(HttpStatusError) as caught:
            await miva.call("Store_Load")
        assert caught.value.status_code == status

    async def test_503_api_offline_raises_api_offline(
        self, store: FakeStore, miva: MivaClient
    ) -> None:
        body = {
            "success": 0,
            "error_code": "api_offline",
            "error_message": "The API is currently offline",
        }
        store.reply(httpx.Response(503, json=body))
        with pytest.raises(ApiOffline) as caught:
            await miva.call("Store_Load")
        assert caught.value.miva_message == "The API is currently offline"

    async def test_503_html_is_an_http_error(self, store: FakeStore, miva: MivaClient) -> None:
        store.reply(httpx.Response(503, html="<h1>Service Unavailable</h1>"))
        with pytest.raises(HttpStatusError) as caught:
            await miva.call("Store_Load")
        assert type(caught.value) is HttpStatusError
        assert caught.value.status_code == 503


class TestInvalidResponses:
    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"  \r\n", id="blank"),
            pytest.param(b"<!doctype html><html><body>Shop</body></html>", id="html"),
            pytest.param(b'{"success":1', id="truncated-json"),
            pytest.param(b"\xff\xfe{", id="not-utf8"),
            pytest.param(b'{"data":{}}', id="no-success-member"),
            pytest.param(b'"success"', id="json-string"),
            pytest.param(b"1", id="json-number"),
            pytest.param(b"null", id="json-null"),
            pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested"),
        ],
    )
    async def test_non_miva_bodies_raise(
        self, store: FakeStore, miva: MivaClient, body: bytes
    ) -> None:
        store.reply(httpx.Response(200, content=body))
        with pytest.raises(InvalidResponse):
            await miva.call("Store_Load")

    async def test_body_of_exactly_one_mib_is_read(
        self, store: FakeStore, miva: MivaClient
    ) -> None:
        prefix, suffix = b'{"success":1,"data":"', b'"}'
        body = prefix + b"x" * (MIB - len(prefix) - len(suffix)) + suffix
        store.reply(httpx.Response(200, content=body))
        assert (await miva.call("Store_Load"))["success"] == 1

    async def test_body_over_one_mib_raises(self, store: FakeStore, miva: MivaClient) -> None:
        body = json.dumps({"success": 1, "data": "x" * MIB}).encode()
        store.reply(httpx.Response(200, stream=Chunked(body)))
        with pytest.raises(InvalidResponse, match="1 MiB"):
            await miva.call("Store_Load")

    async def test_gzip_body_inflating_past_one_mib_raises(
        self, store: FakeStore, miva: MivaClient
    ) -> None:
        packed = gzip.compress(json.dumps({"success": 1, "data": " " * (4 * MIB)}).encode())
        assert len(packed) < MIB // 64
        gzipped = {"Content-Encoding": "gzip"}
        store.reply(httpx.Response(200, stream=Chunked(packed), headers=gzipped))
        with pytest.raises(InvalidResponse, match="1 MiB"):
            await miva.call("Store_Load")

    async def test_corrupt_gzip_raises(self, store: FakeStore, miva: MivaClient) -> None:
        gzipped = {"Content-Encoding": "gzip"}
        store.reply(httpx.Response(200, stream=Chunked(b"not gzip"), headers=gzipped))
        with pytest.raises(InvalidResponse):
            await miva.call("Store_Load")


class TestTransportErrors:
    @pytest.mark.parametrize(
        "error",
        [
            httpx.ConnectError("connection refused"),
            httpx.ConnectTimeout("connect timed out"),
            httpx.ReadTimeout("read timed out"),
            httpx.ReadError("connection reset by peer"),
            httpx.RemoteProtocolError("server disconnected without sending a response"),
        ],
    )
    async def test_no_answer_raises_transport_error(
        self, store: FakeStore, miva: MivaClient, error: httpx.HTTPError
    ) -> None:
        store.reply(error)
        with pytest.raises(TransportError) as caught:
            await miva.call("Store_Load")
        assert caught.value.reason == type(error).__name__
        assert caught.value.__cause__ is error

    async def test_reset_while_reading_the_body_raises_transport_error(
        self, store: FakeStore, miva: MivaClient
    ) -> None:
        store.reply(httpx.Response(200, stream=ResetAfterFirstChunk()))
        with pytest.raises(TransportError, match="ReadError"):
            await miva.call("Store_Load")


class TestProbe:
    async def test_sends_an_unknown_auth_type_and_accepts_miva_refusal(
        self, store: FakeStore
    ) -> None:
        store.reply(failure("access_denied", "Unrecognized authorization type"))
        async with httpx.AsyncClient(transport=httpx.MockTransport(store.handle)) as http:
            await probe(http, ENDPOINT)

        [request] = store.requests
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers[AUTH_HEADER] == "MIVA-CONNECT-PROBE probe"
        assert TOKEN not in str(request.headers)
        assert request.content == b"{}"

    @pytest.mark.parametrize(
        "reply",
        [
            pytest.param(httpx.Response(200, html="<html>storefront</html>"), id="html"),
            pytest.param(httpx.Response(200, content=b""), id="empty"),
            pytest.param(httpx.Response(200, json={"hello": "world"}), id="no-success"),
            pytest.param(httpx.Response(200, json=[{"success": 0}]), id="array"),
            pytest.param(httpx.Response(200, json="success"), id="string"),
            pytest.param(httpx.Response(404, json={"success": 0}), id="404"),
        ],
    )
    async def test_rejects_non_miva_answers(self, store: FakeStore, reply: httpx.Response) -> None:
        store.reply(reply)
        async with httpx.AsyncClient(transport=httpx.MockTransport(store.handle)) as http:
            with pytest.raises(ResponseError):
                await probe(http, ENDPOINT)

    async def test_redirect_is_reported(self, store: FakeStore) -> None:
        store.reply(httpx.Response(301, headers={"Location": "https://shop.example.com/"}), ok())
        async with httpx.AsyncClient(transport=httpx.MockTransport(store.handle)) as http:
            with pytest.raises(Redirected):
                await probe(http, ENDPOINT)
        assert len(store.requests) == 1

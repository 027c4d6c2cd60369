"""A hostile store: every way an endpoint can misbehave maps to a documented error code,
in bounded time, and never to a 500; and no database connection is held while the
service waits on a store (sqlalchemy/sqlalchemy#12077, encode/httpx#1450)."""

from __future__ import annotations

import asyncio
import gzip
import json
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trustme
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from miva_connect.app import create_app
from miva_connect.channels.service import RegisteredChannel
from miva_connect.miva import ROLE_GROUP_PROBES
from miva_connect.settings import Settings
from tests.conftest import _check_response, serve_app
from tests.helpers import channel_auth, open_session
from tests.hostile_store import (
    MIB,
    SIGNATURE_REQUIRED,
    STORE_NAME,
    Connection,
    Handler,
    Request,
    credentials,
    each_request,
    gzip_bomb,
    gzip_padded,
    hostile_store,
    miva_reply,
    miva_results,
    operation_result,
)

DEADLINE = 1.0  # the Miva deadline of the app under test
MARGIN = 0.5  # what answering may add to it
FAST = 0.5  # a fault that needs no waiting is answered well before the deadline
DRIP_INTERVAL = 0.3
BOMB_SIZES = (64, 512)  # MiB once inflated: one gzip layer, three
REDIRECT_TARGET = "https://www.shop.example:8443/mm5/json.mvc?session=abc#frag"


@pytest.fixture(scope="module")
async def fault_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(settings.model_copy(update={"miva_timeout_seconds": DEADLINE})) as http:
        yield http


@dataclass
class Submitted:
    session: str
    response: httpx.Response
    elapsed: float

    @property
    def error(self) -> dict[str, Any]:
        assert self.response.status_code == 422, self.response.text
        body = self.response.json()
        assert set(body) == {"error"}
        error: dict[str, Any] = body["error"]
        assert {"code", "message", "field"} <= set(error)
        return error


async def submit(
    client: httpx.AsyncClient, channel: RegisteredChannel, store_url: str
) -> Submitted:
    session = await open_session(client, channel)
    started = time.monotonic()
    response = await client.post(f"/v1/sessions/{session}/credentials", json=credentials(store_url))
    return Submitted(session, response, time.monotonic() - started)


# -- the faults ---------------------------------------------------------------------------


def answer(
    status: int,
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    *,
    content_type: str | None = "application/json",
) -> Handler:
    async def responder(connection: Connection, _request: Request) -> None:
        await connection.send(status, body, headers, content_type=content_type)

    return each_request(responder)


def html(status: int, headers: dict[str, str] | None = None) -> Handler:
    page = "<!doctype html><html><head><title>Shop</title></head><body>Welcome</body></html>"
    return answer(status, page, headers, content_type="text/html; charset=utf-8")


async def close_after_request(connection: Connection) -> None:
    await connection.read_request()  # and close (FIN) without a word


async def reset_after_request(connection: Connection) -> None:
    await connection.read_request()
    connection.reset()


async def not_http(connection: Connection) -> None:
    await connection.read_request()
    await connection.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")


async def never_answers(connection: Connection) -> None:
    await connection.read_request()
    await connection.wait_for_eof()


async def drip_body(connection: Connection) -> None:
    """Headers at once, then one byte every 300 ms: no single read ever times out."""
    await connection.read_request()
    await connection.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    while True:
        await connection.write(b" ")
        await asyncio.sleep(DRIP_INTERVAL)


async def drip_headers(connection: Connection) -> None:
    await connection.read_request()
    for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 1000:
        await connection.write(bytes([byte]))
        await asyncio.sleep(DRIP_INTERVAL)


async def endless_body(connection: Connection) -> None:
    """A chunked body that never ends, as fast as the client reads it."""
    await connection.read_request()
    await connection.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'6\r\n["xxxx\r\n'
    )
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    while True:
        await connection.write(chunk)


def partial_multicall(continuation: Callable[[Connection, Request], Any]) -> Handler:
    """Answers the first multicall with HTTP 206 and its first two results, and each
    `Range:` request with `continuation`; the unsigned single call like json.mvc."""

    async def responder(connection: Connection, request: Request) -> None:
        if not request.is_multicall:
            await connection.send_json(SIGNATURE_REQUIRED)
        elif "range" not in request.headers:
            results = miva_results(request)
            content_range = {"Content-Range": f"2/{len(results)}"}
            await connection.send_json(results[:2], 206, content_range)
        else:
            await continuation(connection, request)

    return each_request(responder)


async def the_rest(connection: Connection, request: Request) -> None:
    first = int(request.headers["range"].removeprefix("Operations=").split("-")[0])
    await connection.send_json(miva_results(request)[first - 1 :])


async def no_progress(connection: Connection, request: Request) -> None:
    total = len(miva_results(request))
    await connection.send_json([], 206, {"Content-Range": f"2/{total}"})


async def range_refused(connection: Connection, request: Request) -> None:
    total = len(miva_results(request))
    refusal = {
        "success": 0,
        "error_code": "MER-JSN-00032",
        "error_message": "Range Not Satisfiable",
    }
    await connection.send_json(refusal, 416, {"Content-Range": f"*/{total}"})


def first_reply_without_progress() -> Handler:
    async def responder(connection: Connection, request: Request) -> None:
        if not request.is_multicall:
            await connection.send_json(SIGNATURE_REQUIRED)
            return
        assert "range" not in request.headers, "a reply without progress must not be continued"
        total = len(miva_results(request))
        await connection.send_json([], 206, {"Content-Range": f"0/{total}"})

    return each_request(responder)


@dataclass(frozen=True)
class Fault:
    handler: Handler
    code: str
    field: str | None = "store_url"
    slow: bool = False  # only the overall deadline ends it


def bloated(encode: Callable[[bytes], tuple[bytes, dict[str, str]]]) -> Handler:
    """A healthy json.mvc whose every reply is `encode`d: padded, compressed, or both.
    Only a size limit tells these apart from a store that connects."""

    async def responder(connection: Connection, request: Request) -> None:
        payload = miva_results(request) if request.is_multicall else SIGNATURE_REQUIRED
        body, headers = encode(json.dumps(payload).encode())
        await connection.send(200, body, headers)

    return each_request(responder)


def five_megabytes_of_whitespace(content: bytes) -> tuple[bytes, dict[str, str]]:
    return content + b" " * (5 * 1000 * 1000), {}


def replies_of_a_healthy_store() -> list[bytes]:
    """What `bloated` encodes for our check: the multicall's results, the unsigned reply."""
    functions = ["Store_Load"] + [f for group in ROLE_GROUP_PROBES.values() for f in group]
    results = [operation_result({"Function": function}) for function in functions]
    return [json.dumps(results).encode(), json.dumps(SIGNATURE_REQUIRED).encode()]


@pytest.fixture(scope="module", autouse=True)
def bombs_built_before_the_clock_starts() -> None:
    """Building a bomb takes a moment (a CRC over its whole size): not inside a timing."""
    for content in replies_of_a_healthy_store():
        for mebibytes in BOMB_SIZES:
            gzip_padded(content, mebibytes)


def gzip_bomb_of(
    mebibytes: int, layers: int = 1
) -> Callable[[bytes], tuple[bytes, dict[str, str]]]:
    def encode(content: bytes) -> tuple[bytes, dict[str, str]]:
        encoding = ", ".join(["gzip"] * layers)
        return gzip_bomb(content, mebibytes, layers), {"Content-Encoding": encoding}

    return encode


FAULTS: dict[str, Fault] = {
    "html-page": Fault(html(200), "not_a_miva_store"),
    "empty-body": Fault(answer(200, b""), "not_a_miva_store"),
    "invalid-json": Fault(answer(200, '{"success":1,"data":{'), "not_a_miva_store"),
    "json-without-success": Fault(answer(200, '{"data":{"code":"X"}}'), "not_a_miva_store"),
    "json-array-of-numbers": Fault(answer(200, "[1, 2, 3]"), "not_a_miva_store"),
    "http-500": Fault(html(500), "store_error", None),
    "http-502": Fault(html(502), "store_error", None),
    "http-503-html": Fault(html(503), "store_error", None),
    "http-401": Fault(html(401, {"WWW-Authenticate": 'Basic realm="shop"'}), "not_a_miva_store"),
    "http-403": Fault(html(403), "not_a_miva_store"),
    "http-404": Fault(html(404), "not_a_miva_store"),
    **{
        f"redirect-{status}": Fault(
            answer(status, b"", {"Location": REDIRECT_TARGET}), "store_redirected"
        )
        for status in (301, 302, 303, 307, 308)
    },
    "partial-multicall-without-progress": Fault(
        partial_multicall(no_progress), "store_error", None
    ),
    "partial-multicall-empty-first-reply": Fault(
        first_reply_without_progress(), "store_error", None
    ),
    "partial-multicall-range-refused": Fault(partial_multicall(range_refused), "store_error", None),
    "five-megabyte-body": Fault(bloated(five_megabytes_of_whitespace), "not_a_miva_store"),
    "endless-chunked-body": Fault(endless_body, "not_a_miva_store"),
    "gzip-bomb": Fault(bloated(gzip_bomb_of(BOMB_SIZES[0])), "not_a_miva_store"),
    # Under 200 bytes that inflate to 512 MiB in one go unless each layer is bounded.
    "stacked-gzip-bomb": Fault(bloated(gzip_bomb_of(BOMB_SIZES[1], layers=3)), "not_a_miva_store"),
    "corrupt-gzip": Fault(
        answer(200, b"\x1f\x8b not really gzip", {"Content-Encoding": "gzip"}),
        "not_a_miva_store",
    ),
    "closed-after-request": Fault(close_after_request, "store_unreachable"),
    "reset-after-request": Fault(reset_after_request, "store_unreachable"),
    "not-http": Fault(not_http, "store_unreachable"),
    "never-answers": Fault(never_answers, "store_unreachable", slow=True),
    "slow-drip-body": Fault(drip_body, "store_unreachable", slow=True),
    "slow-drip-headers": Fault(drip_headers, "store_unreachable", slow=True),
}


class TestHostileStore:
    @pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
    async def test_each_fault_maps_to_a_documented_code_in_bounded_time(
        self, fault_client: httpx.AsyncClient, channel: RegisteredChannel, fault: Fault
    ) -> None:
        async with hostile_store(fault.handler) as store:
            submitted = await submit(fault_client, channel, store.endpoint)
        error = submitted.error
        assert (error["code"], error["field"]) == (fault.code, fault.field)
        assert submitted.elapsed < DEADLINE + MARGIN
        if fault.slow:
            assert submitted.elapsed >= DEADLINE * 0.9
        else:
            assert submitted.elapsed < FAST, f"took {submitted.elapsed:.2f}s"
        assert store.requests, "the store was never asked"
        # The attempt is on record; the session stays open for a retry.
        session = await fault_client.get(f"/v1/sessions/{submitted.session}")
        assert session.json()["status"] == "pending"

    async def test_redirect_shows_only_where_it_points(
        self, fault_client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        async with hostile_store(FAULTS["redirect-302"].handler) as store:
            error = (await submit(fault_client, channel, store.endpoint)).error
        assert error["location"] == "https://www.shop.example:8443"
        assert "session=abc" not in str(error)

    async def test_password_protected_site_is_explained(
        self, fault_client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        async with hostile_store(FAULTS["http-401"].handler) as store:
            error = (await submit(fault_client, channel, store.endpoint)).error
        assert "password" in error["message"]

    async def test_partial_multicall_is_continued_and_connects(
        self, fault_client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        async with hostile_store(partial_multicall(the_rest)) as store:
            submitted = await submit(fault_client, channel, store.endpoint)
        assert submitted.response.status_code == 200, submitted.response.text
        body = submitted.response.json()
        assert (body["status"], body["store_name"], body["warnings"]) == (
            "connected",
            STORE_NAME,
            [],
        )
        initial, continued = [r for r in store.requests if r.is_multicall]
        total = len(initial.json()["Operations"])
        assert "range" not in initial.headers
        assert continued.headers["range"] == f"Operations=3-{total}"
        assert continued.body == initial.body

    async def test_invalid_tls_certificate_is_store_unreachable(
        self, fault_client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        # A certificate for the right address, from a CA nobody trusts.
        authority = trustme.CA()
        context = authority.issue_cert("127.0.0.1").configure_cert
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context(server_context)
        async with hostile_store(each_request(miva_reply), ssl_context=server_context) as store:
            submitted = await submit(fault_client, channel, store.endpoint)
        assert store.endpoint.startswith("https://")
        assert (submitted.error["code"], submitted.error["field"]) == (
            "store_unreachable",
            "store_url",
        )
        assert submitted.elapsed < FAST
        assert store.requests == []  # nothing was sent over the unverified connection

    async def test_tls_handshake_cut_by_the_deadline_closes_the_socket(
        self, fault_client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        # With `STORE_NETWORK=httpcore` this socket stays open until garbage collection:
        # httpcore's start_tls closes the TCP stream on Exception, not on cancellation.
        closed = asyncio.Event()

        async def stall_the_handshake(connection: Connection) -> None:
            await connection.wait_for_eof()  # reads the ClientHello, answers nothing
            closed.set()

        async with hostile_store(stall_the_handshake) as store:
            url = store.endpoint.replace("http://", "https://")
            submitted = await submit(fault_client, channel, url)
            assert submitted.error["code"] == "store_unreachable"
            assert DEADLINE * 0.9 <= submitted.elapsed < DEADLINE + MARGIN
            await asyncio.wait_for(closed.wait(), timeout=0.5)

    async def test_unknown_host_name_is_store_unreachable(
        self, fault_client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        submitted = await submit(fault_client, channel, "http://store.invalid/mm5/json.mvc")
        assert (submitted.error["code"], submitted.error["field"]) == (
            "store_unreachable",
            "store_url",
        )
        assert submitted.elapsed < DEADLINE + MARGIN

    @pytest.mark.parametrize(
        "encoding",
        ["gzip", "deflate", "deflate-without-zlib-header", "gzip-padded-to-just-under-1-mib"],
    )
    async def test_compressed_replies_within_the_limit_connect(
        self, fault_client: httpx.AsyncClient, channel: RegisteredChannel, encoding: str
    ) -> None:
        def encode(content: bytes) -> tuple[bytes, dict[str, str]]:
            if encoding == "gzip":
                return gzip.compress(content), {"Content-Encoding": "gzip"}
            if encoding == "deflate":
                return zlib.compress(content), {"Content-Encoding": "deflate"}
            if encoding == "deflate-without-zlib-header":
                packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
                return packer.compress(content) + packer.flush(), {"Content-Encoding": "deflate"}
            padded = content + b" " * (MIB - len(content))
            return gzip.compress(padded), {"Content-Encoding": "gzip"}

        async with hostile_store(bloated(encode)) as store:
            submitted = await submit(fault_client, channel, store.endpoint)
        assert submitted.response.status_code == 200, submitted.response.text
        assert submitted.response.json()["store_name"] == STORE_NAME

    @pytest.mark.parametrize("step", ["store-url", "credentials"])
    async def test_a_host_name_httpx_cannot_encode_is_a_merchant_error(
        self, fault_client: httpx.AsyncClient, channel: RegisteredChannel, step: str
    ) -> None:
        """ASCII, so our URL checks pass it; not valid IDNA 2008, so httpx refuses to build
        the request (found by the schema fuzz: it was a 500)."""
        session = await open_session(fault_client, channel)
        url = "https://xn--rk8d/mm5/json.mvc"
        body = {"store_url": url} if step == "store-url" else credentials(url)
        response = await fault_client.post(f"/v1/sessions/{session}/{step}", json=body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] in ("store_unreachable", "invalid_store_url")
        assert error["field"] == "store_url"

    async def test_a_healthy_store_on_the_same_server_connects(
        self, fault_client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        """The control: the harness itself is a store the service accepts."""
        async with hostile_store(each_request(miva_reply)) as store:
            submitted = await submit(fault_client, channel, store.endpoint)
        assert submitted.response.status_code == 200, submitted.response.text
        assert submitted.response.json()["store_name"] == STORE_NAME


# -- no database connection while waiting on a store --------------------------------------


@asynccontextmanager
async def app_and_engine(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine]]:
    """The app with its lifespan, and the engine its services use."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        assert state is not None

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            await app({**scope, "state": dict(state)}, receive, send)

        engine: AsyncEngine = state["onboarding"]._db.engine
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(with_state),
            base_url="http://testserver",
            event_hooks={"response": [_check_response]},
        ) as http:
            yield http, engine


@pytest.fixture
async def app_engine(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine]]:
    async with app_and_engine(settings.model_copy(update={"miva_timeout_seconds": 2})) as pair:
        yield pair


async def settles_to_zero(engine: AsyncEngine, within: float = 1.0) -> int:
    """`checkedout()` once it reaches 0, or its last value after `within` seconds."""
    stop = time.monotonic() + within
    while (count := engine.pool.checkedout()) and time.monotonic() < stop:  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)
    return int(count)


class TestNoConnectionHeldDuringStoreCalls:
    async def test_pool_is_idle_while_the_store_handles_each_request(
        self,
        app_engine: tuple[httpx.AsyncClient, AsyncEngine],
        channel: RegisteredChannel,
    ) -> None:
        client, engine = app_engine
        seen: list[tuple[str, int]] = []

        async def recording(connection: Connection, request: Request) -> None:
            kind = (
                "multicall"
                if request.is_multicall
                else request.headers["x-miva-api-authorization"].split()[0]
            )
            seen.append((kind, engine.pool.checkedout()))  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)  # a store that takes its time
            seen.append((kind, engine.pool.checkedout()))  # type: ignore[attr-defined]
            await miva_reply(connection, request)

        async with hostile_store(each_request(recording)) as store:
            session = await open_session(client, channel)
            checked = await client.post(
                f"/v1/sessions/{session}/store-url", json={"store_url": store.endpoint}
            )
            assert checked.status_code == 200, checked.text
            body = credentials("")  # the store URL checked above
            connected = await client.post(f"/v1/sessions/{session}/credentials", json=body)
            assert connected.status_code == 200, connected.text
        kinds = {kind for kind, _ in seen}
        assert kinds == {"MIVA-CONNECT-PROBE", "multicall", "MIVA"}
        assert [count for _, count in seen] == [0] * len(seen)

    async def test_cancelled_submissions_return_their_connections(
        self,
        app_engine: tuple[httpx.AsyncClient, AsyncEngine],
        channel: RegisteredChannel,
        database_url: str,
    ) -> None:
        client, engine = app_engine
        asked = asyncio.Event()

        async def hang(connection: Connection) -> None:
            await connection.read_request()
            asked.set()
            await connection.wait_for_eof()

        backends_before = await _backends(engine, database_url)
        async with hostile_store(hang) as store:
            for _ in range(5):
                asked.clear()
                session = await open_session(client, channel)
                submission = asyncio.create_task(
                    client.post(
                        f"/v1/sessions/{session}/credentials", json=credentials(store.endpoint)
                    )
                )
                await asyncio.wait_for(asked.wait(), timeout=2)
                assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
                submission.cancel()  # the client went away mid-validation
                await asyncio.gather(submission, return_exceptions=True)
                assert submission.cancelled()
                assert await settles_to_zero(engine) == 0
                status = await client.get(f"/v1/sessions/{session}")
                assert status.json()["status"] == "pending"
        assert await _backends(engine, database_url, at_most=backends_before) <= backends_before
        async with hostile_store(each_request(miva_reply)) as store:
            session = await open_session(client, channel)
            response = await client.post(
                f"/v1/sessions/{session}/credentials", json=credentials(store.endpoint)
            )
        assert response.status_code == 200, response.text
        assert await settles_to_zero(engine) == 0

    @pytest.mark.parametrize("store_kind", ["healthy", "failing"])
    async def test_cancelled_at_any_point_returns_every_connection(
        self,
        app_engine: tuple[httpx.AsyncClient, AsyncEngine],
        channel: RegisteredChannel,
        database_url: str,
        store_kind: str,
    ) -> None:
        """Cancel after 0, 1, 2, ... turns of the event loop: some land in a database
        call (loading, recording, saving), some in the store call."""
        client, engine = app_engine
        handler = each_request(miva_reply) if store_kind == "healthy" else html(500)
        outcomes: set[str] = set()
        backends_before = await _backends(engine, database_url)
        async with hostile_store(handler) as store:
            for turns in range(0, 120, 3):
                session = await open_session(client, channel)
                submission = asyncio.create_task(
                    client.post(
                        f"/v1/sessions/{session}/credentials", json=credentials(store.endpoint)
                    )
                )
                for _ in range(turns):
                    await asyncio.sleep(0)
                submission.cancel()
                await asyncio.gather(submission, return_exceptions=True)
                outcomes.add(
                    "cancelled" if submission.cancelled() else str(submission.result().status_code)
                )
                assert await settles_to_zero(engine) == 0, f"leaked after {turns} turns"
        assert "cancelled" in outcomes
        assert await settles_to_zero(engine) == 0
        # Connections that were dropped are gone on the server too (Postgres).
        assert await _backends(engine, database_url, at_most=backends_before) <= backends_before
        # And the database takes writes at once (SQLite: no zombie holding the write lock).
        assert (
            await client.post("/v1/sessions", json={}, auth=channel_auth(channel))
        ).status_code == 201


async def _backends(engine: AsyncEngine, database_url: str, at_most: int | None = None) -> int:
    """Server connections to the app's database (Postgres), not counting the one asking;
    with `at_most`, waits a little for closed ones to leave (a backend exits after its
    client has gone)."""
    if not database_url.startswith("postgresql"):
        return 0
    stop = time.monotonic() + 2
    while True:
        async with engine.connect() as connection:
            result = await connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            count = int(result.scalar_one())
        if at_most is None or count <= at_most or time.monotonic() > stop:
            return count
        await asyncio.sleep(0.05)

"""A store that misbehaves on purpose: a raw asyncio socket server on 127.0.0.1.

Each accepted connection is handed to a `Handler` coroutine that decides, byte by
byte, what the client gets: an HTML page, a reset, a drip, nothing at all. Helpers
read one HTTP/1.1 request and write canned replies; `miva_reply` answers like json.mvc
for the cases that need a well-behaved store around one fault.

Only loopback: the server binds 127.0.0.1 and nothing here connects anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import socket
import ssl
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

ENDPOINT_PATH = "/mm5/json.mvc"
MIB = 1 << 20
MAX_HEADER_BYTES = 64 * 1024
STORE_CODE = "HOSTILE"
STORE_NAME = "Hostile Store"
# Miva's answer to an unsigned request for a token that requires signatures.
SIGNATURE_REQUIRED = {
    "success": 0,
    "error_code": "access_denied",
    "error_message": "Timestamp requires request signature",
}


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def is_multicall(self) -> bool:
        try:
            payload = self.json()
        except ValueError:
            return False
        return isinstance(payload, dict) and "Operations" in payload


class Connection:
    """One accepted connection: read requests, write whatever the test wants."""

    def __init__(
        self, store: HostileStore, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        self.store = store
        self.reader = reader
        self.writer = writer

    async def read_request(self) -> Request | None:
        """The next request on this connection, or None once the client has gone."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        try:
            body = await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        request = Request(method, target, headers, body)
        self.store.requests.append(request)
        for hook in self.store.on_request:
            hook(request)
        return request

    async def send(
        self,
        status: int,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        *,
        content_type: str | None = "application/json",
    ) -> None:
        """A complete response with a Content-Length."""
        content = body.encode() if isinstance(body, str) else body
        fields = {"Content-Length": str(len(content))}
        if content_type:
            fields["Content-Type"] = content_type
        fields.update(headers or {})
        await self.write(head(status, fields) + content)

    async def send_json(
        self, payload: object, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        await self.send(status, json.dumps(payload), headers)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def wait_for_eof(self) -> None:
        """Say nothing, until the client gives up (or the server stops)."""
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(65536):
                pass

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


Handler = Callable[[Connection], Awaitable[None]]
Responder = Callable[[Connection, Request], Awaitable[None]]


def head(status: int, headers: Mapping[str, str]) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def each_request(responder: Responder) -> Handler:
    """A handler that answers every request of a keep-alive connection with `responder`."""

    async def handler(connection: Connection) -> None:
        while (request := await connection.read_request()) is not None:
            await responder(connection, request)

    return handler


def operation_result(operation: Mapping[str, Any]) -> dict[str, Any]:
    """What a healthy store answers for one of the operations we send."""
    if operation.get("Function") == "Store_Load":
        return {"success": 1, "data": {"id": 1, "code": STORE_CODE, "name": STORE_NAME}}
    return {"success": 1, "data": {"total_count": 0, "start_offset": 0, "data": []}}


def miva_results(request: Request) -> list[dict[str, Any]]:
    """One healthy result per operation of a multicall."""
    return [operation_result(op) for op in request.json()["Operations"]]


async def miva_reply(connection: Connection, request: Request) -> None:
    """json.mvc for a token with every group that requires signatures."""
    if request.is_multicall:
        await connection.send_json(miva_results(request))
    else:
        await connection.send_json(SIGNATURE_REQUIRED)


@dataclass
class HostileStore:
    """The server; `endpoint` is the URL to submit."""

    handler: Handler
    ssl_context: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    on_request: list[Callable[[Request], None]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.base_url + ENDPOINT_PATH

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", 0, ssl=self.ssl_context, limit=MAX_HEADER_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in list(self._writers):
            writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self.handler(Connection(self, reader, writer))
        except (ConnectionError, ssl.SSLError):
            pass  # the client went away mid-write: that is what several cases are about
        except asyncio.CancelledError:
            pass  # `stop()`: end quietly (asyncio logs connection tasks that end cancelled)
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()


@asynccontextmanager
async def hostile_store(
    handler: Handler, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[HostileStore]:
    store = HostileStore(handler, ssl_context)
    await store.start()
    try:
        yield store
    finally:
        await store.stop()


@functools.cache
def gzip_padded(content: bytes, mebibytes: int, filler: bytes = b" ") -> bytes:
    """A valid gzip stream of `content` followed by `mebibytes` MiB of `filler` bytes,
    built without compressing them all: after a full flush, every MiB of filler
    compresses to the same bytes."""
    chunk = filler * MIB
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    start = packer.compress(content) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    assert packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH) == block
    end = packer.flush()[:-8]  # the final block, without the trailer written for 2 MiB
    crc = zlib.crc32(content)
    for _ in range(mebibytes):
        crc = zlib.crc32(chunk, crc)
    size = len(content) + mebibytes * MIB
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return start + block * mebibytes + end + trailer


def gzip_bomb(content: bytes, mebibytes: int, layers: int = 1) -> bytes:
    """`content` and `mebibytes` MiB of spaces (still valid JSON), in `layers` nested gzip
    encodings (`Content-Encoding: gzip, gzip, ...`)."""
    body = gzip_padded(content, mebibytes)
    for _ in range(layers - 1):
        body = gzip.compress(body, 9)
    return body


def credentials(store_url: str) -> dict[str, str]:
    """A merchant's form for the hostile store, with canary secrets."""
    from tests import canaries

    return {
        "store_url": store_url,
        "store_code": STORE_CODE,
        "api_key": canaries.api_key(),
        "signing_key": canaries.signing_key(),
    }

"""A TCP proxy on 127.0.0.1 that the tests can cut: the database "goes down" for one
app while the server (and every other test's connection to it) stays up.

`cut()` aborts every proxied connection and stops listening, so new connections are
refused; `restore()` listens again on the same port. `cut_on(pattern)` cuts at the
moment a client sends bytes containing `pattern` (a statement's SQL text, say), before
they reach the server. `forget()` is a NAT that dropped its idle flows: the clients'
connections stay open until they send something, which is answered with a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._trigger: bytes | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._forgotten: set[asyncio.StreamWriter] = set()  # clients' ends
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._upstreams: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @property
    def up(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (again) on `port`, or on a free port the first time."""
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def restore(self) -> None:
        self._trigger = None
        if self._server is None:
            await self.start()

    def cut(self) -> None:
        """Drop every connection now and refuse new ones."""
        self.cuts += 1
        self._trigger = None
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    def forget(self) -> None:
        """Drop every connection's server side now; reset each client's side when it next
        sends. New connections work."""
        for task in list(self._tasks):
            writer = self._clients.get(task)
            if writer is not None:
                self._forgotten.add(writer)
                upstream = self._upstreams.get(task)
                if upstream is not None:
                    upstream.transport.abort()

    def cut_on(self, pattern: bytes) -> None:
        """Cut as soon as a client sends `pattern`; those bytes never reach the server."""
        self._trigger = pattern

    async def stop(self) -> None:
        self.cut()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self._clients[task] = writer
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(self.target_host, self.target_port)
            self._writers.add(upstream)
            self._upstreams[task] = upstream
            await asyncio.gather(
                self._pipe(reader, upstream, client=writer), self._pipe(up_reader, writer)
            )
        except (OSError, asyncio.CancelledError):
            pass  # cut, or the server went away: end quietly
        finally:
            self._forgotten.discard(writer)
            for end in (writer, upstream):
                if end is not None:
                    end.transport.abort()
                    self._writers.discard(end)
            self._tasks.discard(task)
            self._clients.pop(task, None)
            self._upstreams.pop(task, None)

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        # What a NAT does with a packet of a flow it forgot: RST (SO_LINGER 0, then abort).
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client: asyncio.StreamWriter | None = None,
    ) -> None:
        """Copy one direction; from a `client`, watch for the `cut_on` pattern."""
        tail = b""
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if client is not None and client in self._forgotten:
                    self._reset(client)
                    return
                trigger = self._trigger
                if client is not None and trigger is not None and trigger in tail + data:
                    self.cut()
                    return
                tail = data[-256:]
                writer.write(data)
                await writer.drain()
        if writer not in self._forgotten:  # a forgotten client hears nothing until it sends
            writer.transport.abort()


@asynccontextmanager
async def tcp_proxy(target_host: str, target_port: int) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()

"""Running the sandbox with uvicorn: blocking for the CLI, or in a thread for tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from miva_connect.sandbox.app import create_sandbox_app
from miva_connect.sandbox.config import Sandbox

STARTUP_TIMEOUT = 10.0


def run_sandbox(
    sandbox: Sandbox, host: str = "127.0.0.1", port: int = 8100, *, access_log: bool = False
) -> None:
    """Serve `sandbox` until interrupted (blocking)."""
    # The access log is off by default: query strings may carry values worth keeping out.
    uvicorn.run(
        create_sandbox_app(sandbox),
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
        lifespan="off",
    )


@contextmanager
def serve_in_thread(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `sandbox` on `host` in a background thread; yield its base URL, then stop it."""
    # Binding here (port 0 = any free port) tells us the port before uvicorn starts.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    config = uvicorn.Config(
        create_sandbox_app(sandbox),
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="asyncio",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="miva-sandbox", daemon=True
    )
    thread.start()
    try:
        _wait_started(server, thread)
        bound_host, bound_port = sock.getsockname()[:2]
        yield f"http://{_url_host(bound_host)}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("sandbox server failed to start")
        if time.monotonic() > deadline:
            raise RuntimeError("sandbox server did not start in time")
        time.sleep(0.01)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

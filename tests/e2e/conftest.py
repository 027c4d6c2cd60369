"""The service on a real port, a channel that sends merchants back to the sandbox's channel
page, and Debian's Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright
from pydantic import AnyHttpUrl

from miva_connect.app import create_app
from miva_connect.channels.service import ChannelService, RegisteredChannel
from miva_connect.db.engine import Database
from miva_connect.settings import Settings
from tests import canaries

CHROMIUM = os.environ.get("MIVA_CONNECT_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
# Headless Chromium as root, quiet on a machine with no outside network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="session")
def web_url(settings: Settings) -> Iterator[str]:
    """The app served by uvicorn on loopback, in a thread, as a browser reaches it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    served = settings.model_copy(update={"public_url": AnyHttpUrl(url)})
    server = uvicorn.Server(
        uvicorn.Config(create_app(served), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, name="miva-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "the app did not start"
        assert time.monotonic() < deadline, "the app did not start in time"
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(10)


@pytest.fixture
async def web_channel(database: Database, sandbox: object) -> RegisteredChannel:
    base_url = sandbox.base_url  # type: ignore[attr-defined]
    registered = await ChannelService(database).register(
        "Acme Marketplace", f"{base_url}/channel/return", slug=f"acme-{secrets.token_hex(4)}"
    )
    canaries.register(registered.secret)
    return registered


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (make test does it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    yield await context.new_page()
    await context.close()


@pytest.fixture
async def page_without_js(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(java_script_enabled=False)
    yield await context.new_page()
    await context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS / "flow", ignore_errors=True)
    (SCREENSHOTS / "flow").mkdir(parents=True)
    return SCREENSHOTS / "flow"

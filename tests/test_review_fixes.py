"""Controls found missing or weak in review, each with the test that would have caught it."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from miva_connect.app import create_app
from miva_connect.clientip import rate_key
from miva_connect.egress import DestinationRefused, SystemResolver
from miva_connect.logs import configure_logging, redact
from miva_connect.settings import Settings

SRC = Path(__file__).resolve().parents[1] / "src" / "miva_connect"


class TestClientKeys:
    @pytest.mark.parametrize(
        ("address", "key"),
        [
            ("198.51.100.7", "198.51.100.7"),
            ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("unknown", "unknown"),
        ],
    )
    def test_ipv6_counts_by_its_64(self, address: str, key: str) -> None:
        assert rate_key(address) == key


class TestResolverPool:
    async def test_lookups_that_never_answer_cannot_exhaust_anything_else(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        release = threading.Event()

        def stuck(*_args: Any, **_kwargs: Any) -> list[Any]:
            release.wait(10)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.5", 443))]

        monkeypatch.setattr(socket, "getaddrinfo", stuck)
        resolver = SystemResolver(max_lookups=2)
        waits = [asyncio.create_task(resolver.resolve(f"h{n}.example", 443)) for n in range(2)]
        await asyncio.sleep(0.1)
        with pytest.raises(DestinationRefused):
            await asyncio.wait_for(resolver.resolve("third.example", 443), 1)
        for wait in waits:
            wait.cancel()
        release.set()
        await asyncio.gather(*waits, return_exceptions=True)
        await asyncio.sleep(0.1)  # the threads return and give their slots back
        assert await resolver.resolve("again.example", 443)


class TestLogs:
    def test_query_values_are_masked(self) -> None:
        line = '127.0.0.1 - "GET /connect/shop?state=SECRETSTATE456&x=1 HTTP/1.1" 303'
        event = redact(None, "info", {"event": line})
        assert "SECRETSTATE456" not in event["event"]
        assert "state=" in event["event"]

    def test_production_logs_are_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        configure_logging("INFO", "auto", production=True)
        try:
            logging.getLogger("miva_connect.test").warning("hello %s", "world")
            line = capsys.readouterr().err.strip().splitlines()[-1]
            assert json.loads(line)["event"] == "hello world"
        finally:
            configure_logging("DEBUG", "json")

    async def test_every_answer_has_a_request_id_that_its_log_lines_carry(
        self, client: httpx.AsyncClient, channel: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        from tests.helpers import channel_auth

        with caplog.at_level(logging.INFO):
            response = await client.post(
                "/v1/sessions", json={"state": "s"}, auth=channel_auth(channel)
            )
        request_id = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        opened = [r for r in caplog.records if "onboarding.session.opened" in str(r.msg)]
        assert opened
        assert all(r.msg["request_id"] == request_id for r in opened)  # type: ignore[index]


class TestLastResortErrors:
    async def test_a_500_still_carries_the_headers_and_a_request_id(
        self, settings: Settings
    ) -> None:
        app: FastAPI = create_app(settings)

        async def boom() -> None:
            raise RuntimeError("unexpected")

        app.add_api_route("/boom", boom)
        async with app.router.lifespan_context(app) as state:

            async def with_state(scope: Any, receive: Any, send: Any) -> None:
                await app({**scope, "state": dict(state or {})}, receive, send)

            transport = httpx.ASGITransport(with_state, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                response = await http.get("/boom")
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "internal_error"
        assert response.headers["strict-transport-security"]
        assert response.headers["cache-control"] == "no-store"
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_secrets_are_never_compared_with_equality() -> None:
    """Hashes, secrets and signatures are compared with `hmac.compare_digest` only."""
    suspicious = re.compile(
        r"(secret|signature|digest|_hash|\bmac\b)\w*\s*(==|!=)|(==|!=)\s*\w*(secret|signature|digest|_hash)"
    )
    # A database lookup by hash: the comparison happens in an index, not in Python.
    allowed = {'SESSIONS.c.token_hash == bindparam("token_hash")'}
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if suspicious.search(line) and not any(ok in line for ok in allowed)
    ]
    assert offenders == []
    assert "compare_digest" in (SRC / "tokens.py").read_text()

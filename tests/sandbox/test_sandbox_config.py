"""Sandbox state, demo data, the IP allow list, the server helper, and secret hygiene."""

from __future__ import annotations

import base64
import logging
import socket
import time

import httpx
import pytest

from miva_connect.sandbox import (
    ALL_GROUPS,
    DEMO_BLOCKED_IP_ALLOWLIST,
    DEMO_SIGNING_KEY,
    DEMO_STORE_CODE,
    DEMO_STORE_NAME,
    DEMO_TOKEN_DISABLED,
    DEMO_TOKEN_GOOD,
    DEMO_TOKEN_PRODUCTS_ONLY,
    DEMO_TOKEN_UNSIGNED_OK,
    DEMO_TOKEN_WRONG_IP,
    DEMO_TOKENS,
    GROUP_PRODUCTS,
    Sandbox,
    SandboxStore,
    SandboxToken,
    demo_sandbox,
    ip_allowed,
    serve_in_thread,
)


def test_demo_sandbox() -> None:
    sandbox = demo_sandbox()

    assert sandbox.find_store("demo") == sandbox.stores["DEMO"]
    assert (DEMO_STORE_CODE, DEMO_STORE_NAME) == ("DEMO", "Demo Store")
    assert DEMO_TOKEN_GOOD == "demo0000000000000000000000000001"
    assert len(base64.b64decode(DEMO_SIGNING_KEY)) == 32
    assert set(DEMO_TOKENS) == set(sandbox.tokens)
    tokens = sandbox.tokens
    assert tokens[DEMO_TOKEN_GOOD].groups == ALL_GROUPS
    assert tokens[DEMO_TOKEN_GOOD].require_signature
    assert tokens[DEMO_TOKEN_PRODUCTS_ONLY].groups == {GROUP_PRODUCTS}
    assert not tokens[DEMO_TOKEN_UNSIGNED_OK].require_signature
    assert tokens[DEMO_TOKEN_UNSIGNED_OK].signing_key == DEMO_SIGNING_KEY
    assert tokens[DEMO_TOKEN_DISABLED].disabled
    assert tokens[DEMO_TOKEN_WRONG_IP].allowed_ips == DEMO_BLOCKED_IP_ALLOWLIST == "203.0.113.7"


def test_add_store_and_token() -> None:
    sandbox = Sandbox()

    store = sandbox.add_store(SandboxStore(code="MixedCase", name="Mixed"))
    token = sandbox.add_token(SandboxToken("tok"))

    assert sandbox.stores == {"MIXEDCASE": store}
    assert sandbox.find_store("mixedcase") is store
    assert sandbox.find_store("other") is None
    assert sandbox.tokens == {"tok": token}


def test_reprs_hold_no_secrets(caller, sandbox: Sandbox) -> None:
    caller.store_load()
    token = sandbox.tokens[DEMO_TOKEN_GOOD]

    for text in (repr(token), repr(sandbox), repr(sandbox.requests[-1])):
        assert DEMO_TOKEN_GOOD not in text
        assert DEMO_SIGNING_KEY not in text
    assert "X-Miva-API-Authorization".lower() not in repr(sandbox.requests[-1]).lower()


def test_requests_are_recorded(caller, sandbox: Sandbox) -> None:
    response = caller.store_load(headers={"X-Extra": "1"})

    recorded = sandbox.requests[-1]
    assert (recorded.method, recorded.path, recorded.client_ip) == (
        "POST",
        "/mm5/json.mvc",
        "127.0.0.1",
    )
    assert recorded.body == response.request.content
    assert recorded.headers["x-extra"] == "1"
    assert recorded.headers["x-miva-api-authorization"].startswith("MIVA-HMAC-SHA256 ")


def test_log_lines_hold_no_secrets(caller, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="miva_connect.sandbox")

    caller.store_load()
    caller.store_load(key="b3RoZXIta2V5")
    caller.store_load(token="demo0000000000000000000000000099")

    messages = [r.getMessage() for r in caplog.records if r.name.startswith("miva_connect")]
    assert any("accepted" in m for m in messages)
    assert any("Invalid request signature" in m for m in messages)
    for text in (caplog.text, *messages):
        assert "demo00000000" not in text
        assert DEMO_SIGNING_KEY not in text


@pytest.mark.parametrize(
    ("client_ip", "allowed", "expected"),
    [
        ("127.0.0.1", "0.0.0.0/0", True),
        ("::1", "0.0.0.0/0", False),
        ("::1", "0.0.0.0/0, ::/0", True),
        ("2001:db8::5", "2001:db8::/32", True),
        ("2001:db8::5", "2001:db8::4", False),
        ("::ffff:127.0.0.1", "127.0.0.1", False),
        ("192.0.2.10", "192.0.2.0/24", True),
        ("192.0.2.10", " 192.0.2.10 ", True),
        ("192.0.2.10", "192.0.2.0/33, 192.0.2.10/32", True),
        ("192.0.2.10", "192.0.2.0/33", False),
        ("192.0.2.10", "192.0.2.5/24", True),  # host bits are ignored
        ("192.0.2.10", "", False),
        ("not-an-ip", "0.0.0.0/0", False),
    ],
)
def test_ip_allowed(client_ip: str, allowed: str, expected: bool) -> None:
    assert ip_allowed(client_ip, allowed) is expected


def test_serve_in_thread_starts_and_stops() -> None:
    with serve_in_thread(demo_sandbox()) as base_url:
        host, port = base_url.removeprefix("http://").split(":")
        assert host == "127.0.0.1"
        with httpx.Client() as http:
            assert http.get(base_url + "/").status_code == 200

    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection((host, int(port)), timeout=1),
    ):
        pass


def test_latency_delays_every_api_reply(caller, sandbox: Sandbox) -> None:
    sandbox.latency = 0.2
    started = time.monotonic()
    assert caller.store_load().json()["success"] == 1
    assert caller.post(b"", authorization="").status_code == 200
    # A lower bound only: the reply waits at least the configured latency each time.
    assert time.monotonic() - started >= 0.4

"""Fixtures for the sandbox tests: one real server on loopback, reset before each test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import httpx
import pytest

from miva_connect.sandbox import (
    DEMO_SIGNING_KEY,
    DEMO_STORE_CODE,
    DEMO_TOKEN_GOOD,
    Sandbox,
    demo_sandbox,
    serve_in_thread,
)

JSON_PATH = "/mm5/json.mvc"


def hmac_header(body: bytes, token: str, key_b64: str, kind: str = "MIVA-HMAC-SHA256") -> str:
    """`X-Miva-API-Authorization` computed independently of the code under test."""
    if kind.upper() == "MIVA":
        return f"{kind} {token}"
    digest = hashlib.sha1 if kind.upper().endswith("SHA1") else hashlib.sha256
    mac = hmac.new(base64.b64decode(key_b64), body, digest).digest()
    return f"{kind} {token}:{base64.b64encode(mac).decode('ascii')}"


@dataclass
class Caller:
    """Posts (signed) requests to the sandbox's json.mvc."""

    http: httpx.Client
    base_url: str

    def encode(self, body: Mapping[str, object], *, timestamp: bool = True) -> bytes:
        members = dict(body)
        if timestamp:
            members.setdefault("Miva_Request_Timestamp", int(time.time()))
        return json.dumps(members, separators=(",", ":")).encode()

    def post(
        self,
        body: Mapping[str, object] | bytes,
        *,
        token: str = DEMO_TOKEN_GOOD,
        key: str = DEMO_SIGNING_KEY,
        kind: str = "MIVA-HMAC-SHA256",
        authorization: str | None = None,
        method: str = "POST",
        path: str = JSON_PATH,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        timestamp: bool = True,
    ) -> httpx.Response:
        content = body if isinstance(body, bytes) else self.encode(body, timestamp=timestamp)
        auth = hmac_header(content, token, key, kind) if authorization is None else authorization
        sent = {"Content-Type": content_type, "X-Miva-API-Authorization": auth, **(headers or {})}
        return self.http.request(method, self.base_url + path, content=content, headers=sent)

    def store_load(self, **options: Any) -> httpx.Response:
        return self.post({"Store_Code": DEMO_STORE_CODE, "Function": "Store_Load"}, **options)


@pytest.fixture(scope="session")
def _server() -> Iterator[tuple[Sandbox, str]]:
    shared = demo_sandbox()
    with serve_in_thread(shared) as base_url:
        yield shared, base_url


@pytest.fixture
def sandbox(_server: tuple[Sandbox, str]) -> Sandbox:
    """The running sandbox, reset to the demo state (the app keeps the same object)."""
    shared, _ = _server
    fresh = demo_sandbox()
    for item in fields(Sandbox):
        setattr(shared, item.name, getattr(fresh, item.name))
    shared.record_requests = True
    return shared


@pytest.fixture
def base_url(sandbox: Sandbox, _server: tuple[Sandbox, str]) -> str:
    return _server[1]


@pytest.fixture
def endpoint(base_url: str) -> str:
    return base_url + JSON_PATH


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def caller(http: httpx.Client, base_url: str) -> Caller:
    return Caller(http, base_url)

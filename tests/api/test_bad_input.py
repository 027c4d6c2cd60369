"""Bad input gets a clear 4xx, never a 500, on every endpoint."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from miva_connect.channels.service import RegisteredChannel
from tests.helpers import channel_auth, open_session

ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "nul\x00inside",
    "\u2028",
    "é" * 300,
    "🙂" * 200,
    "a" * 4096,
    "../../etc/passwd",
    "%00%2e%2e",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
]
ODD_VALUES: list[Any] = [*ODD_STRINGS, None, 0, -1, 1e308, True, [], {}, ["x"], {"a": "b"}]
ODD_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"{",
    b'{"a":' * 200 + b"1" + b"}" * 200,
    b"\xff\xfe\x00",
    b'{"store_url": "\\ud800"}',
]


def bodies(fields: list[str]) -> list[Any]:
    cases: list[Any] = []
    for value in ODD_VALUES:
        cases.append(dict.fromkeys(fields, value))
        cases.append({fields[0]: value})
    return cases


def assert_clear(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.request.url.path, response.text)
    if response.headers.get("content-type", "").startswith("text/html"):  # the web pages
        assert '<html lang="en">' in response.text
    elif response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"]
        assert error["message"]


class TestNoServerErrors:
    async def test_session_creation(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        for body in bodies(["state"]):
            assert_clear(await client.post("/v1/sessions", json=body, auth=channel_auth(channel)))
        for raw in ODD_BODIES:
            assert_clear(
                await client.post(
                    "/v1/sessions",
                    content=raw,
                    headers={"content-type": "application/json"},
                    auth=channel_auth(channel),
                )
            )

    async def test_merchant_steps(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        session = await open_session(client, channel)
        for body in bodies(["store_url"]):
            assert_clear(await client.post(f"/v1/sessions/{session}/store-url", json=body))
        for body in bodies(["store_code", "api_key", "signing_key", "store_url"]):
            assert_clear(await client.post(f"/v1/sessions/{session}/credentials", json=body))
        for raw in ODD_BODIES:
            for step in ("store-url", "credentials"):
                assert_clear(
                    await client.post(
                        f"/v1/sessions/{session}/{step}",
                        content=raw,
                        headers={"content-type": "application/json"},
                    )
                )

    @pytest.mark.parametrize("raw", [s for s in ODD_STRINGS if s])
    async def test_path_and_query_values(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, raw: str
    ) -> None:
        auth = channel_auth(channel)
        value = quote(raw, safe="")
        for method, path, params in [
            ("GET", f"/v1/sessions/{value}", None),
            ("GET", f"/v1/sessions/{value}/redirect", None),
            ("POST", f"/v1/sessions/{value}/store-url", None),
            ("GET", f"/connect/{value}", {"state": "x"}),
            ("GET", f"/connect/{channel.slug}", {"state": raw}),
            ("GET", f"/connect/sessions/{value}", None),
            ("GET", f"/v1/merchants/{value}", None),
        ]:
            response = await client.request(
                method, path, params=params, auth=auth, json={"store_url": "x"}
            )
            assert_clear(response)

    async def test_bodies_over_16_kib_are_refused_before_parsing(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        session = await open_session(client, channel)
        body = {"store_code": "S", "api_key": "k" * 20_000, "signing_key": ""}
        response = await client.post(f"/v1/sessions/{session}/credentials", json=body)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            yield b'{"store_code": "S", "api_key": "'
            for _ in range(20):
                yield b"k" * 1024
            yield b'"}'

        response = await client.post(
            f"/v1/sessions/{session}/credentials",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413

    async def test_wrong_channel_credentials_of_any_shape(self, client: httpx.AsyncClient) -> None:
        for user, password in [("", ""), ("\x00", "\x00"), ("a" * 5000, "b" * 5000), ("é", "🙂")]:
            response = await client.post(
                "/v1/sessions", json={"state": "s"}, auth=httpx.BasicAuth(user, password)
            )
            assert response.status_code == 401
        for header in ["Basic", "Basic !!!", "Bearer x", "Basic " + "A" * 10000]:
            response = await client.post(
                "/v1/sessions", json={"state": "s"}, headers={"Authorization": header}
            )
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"


class TestFormEncodedBodies:
    async def test_a_form_is_refused_with_a_clear_error(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        session = await open_session(client, channel)
        response = await client.post(
            f"/v1/sessions/{session}/credentials",
            data={"store_code": "S", "api_key": "k", "signing_key": ""},
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"

    async def test_big_forms_are_refused_before_parsing(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        session = await open_session(client, channel)
        many_fields = "&".join(f"f{n}=x" for n in range(5000))
        response = await client.post(
            f"/v1/sessions/{session}/credentials",
            content=many_fields.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"


class TestLoneSurrogates:
    @pytest.mark.parametrize("field", ["store_url", "store_code", "api_key", "signing_key"])
    async def test_in_credentials(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, field: str
    ) -> None:
        session = await open_session(client, channel)
        body = {"store_url": "http://127.0.0.1/mm5/", "store_code": "S", "api_key": "k"}
        raw = json.dumps({**body, field: "x"}).replace('"x"', '"\\ud800"').encode()
        response = await client.post(
            f"/v1/sessions/{session}/credentials",
            content=raw,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, response.text

    async def test_in_state(self, client: httpx.AsyncClient, channel: RegisteredChannel) -> None:
        response = await client.post(
            "/v1/sessions",
            content=b'{"state": "\\ud800"}',
            headers={"content-type": "application/json"},
            auth=channel_auth(channel),
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_state"

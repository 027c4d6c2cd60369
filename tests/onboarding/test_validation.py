"""What a hostile store can put in front of a merchant: only what we choose to show."""

from __future__ import annotations

import httpx
import pytest

from miva_connect.egress import AddressPolicy
from miva_connect.errors import ValidationFailed
from miva_connect.miva import store_http_client
from miva_connect.onboarding.credentials import StoreCredentials
from miva_connect.onboarding.validation import StoreValidator
from tests import canaries
from tests.helpers import StubResolver

ENDPOINT = "https://store.example/mm5/json.mvc"


def validator(handler: httpx.MockTransport) -> StoreValidator:
    resolver = StubResolver({"store.example": ["93.184.216.34"]})
    http = store_http_client(
        timeout=2, policy=AddressPolicy(allow_private=False), resolver=resolver, transport=handler
    )
    return StoreValidator(http, deadline=2, egress_ips=["198.51.100.7"])


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        (
            "https://www.store.example/mm5/json.mvc?sso_token=abc#Call+1-800",
            "https://www.store.example",
        ),
        ("http://10.0.0.5:8080/admin?call-us", "http://10.0.0.5:8080"),
        ("javascript:alert(1)", "another address"),
        ("https://evil.example\u202e/x", "another address"),
        ("", "another address"),
    ],
)
async def test_redirect_shows_only_scheme_host_and_port(location: str, shown: str) -> None:
    def store(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers=[(b"Location", location.encode())])

    with pytest.raises(ValidationFailed) as caught:
        await validator(httpx.MockTransport(store)).check_endpoint(ENDPOINT)
    error = caught.value.body()["error"]
    assert error["code"] == "store_redirected"
    assert error["location"] == shown
    assert shown in error["message"]
    assert "sso_token" not in str(error)
    assert "call" not in str(error).lower()


async def test_store_error_text_is_never_shown() -> None:
    api_key = canaries.api_key()

    def store(_request: httpx.Request) -> httpx.Response:
        text = f"<script>alert(1)</script> bad key {api_key}"
        return httpx.Response(
            200, json={"success": 0, "error_code": "access_denied", "error_message": text}
        )

    credentials = StoreCredentials(ENDPOINT, "S", api_key, "")
    with pytest.raises(ValidationFailed) as caught:
        await validator(httpx.MockTransport(store)).verify(credentials)
    body = str(caught.value.body())
    assert caught.value.code == "store_error"
    assert "script" not in body
    assert api_key not in body


async def test_store_name_from_a_hostile_store_is_bounded_and_printable() -> None:
    def store(request: httpx.Request) -> httpx.Response:
        if b"Operations" not in request.content:
            return httpx.Response(200, json={"success": 1})
        name = "Shop\x00\u202e" + "N" * 5000
        results = [{"success": 1, "data": {"code": "S", "name": name}}] + [{"success": 1}] * 4
        return httpx.Response(200, json=results)

    verification = await validator(httpx.MockTransport(store)).verify(
        StoreCredentials(ENDPOINT, "S", "token", "")
    )
    assert verification.store_name.startswith("Shop")
    assert "\x00" not in verification.store_name
    assert len(verification.store_name) <= 200


async def test_store_load_refused_inside_the_multicall_is_about_the_store_code() -> None:
    def store(request: httpx.Request) -> httpx.Response:
        if b"Operations" not in request.content:
            return httpx.Response(200, json={"success": 1})
        denied = {"success": 0, "error_code": "access_denied", "error_message": "Access denied"}
        return httpx.Response(200, json=[denied] + [{"success": 1}] * 4)

    with pytest.raises(ValidationFailed) as caught:
        await validator(httpx.MockTransport(store)).verify(
            StoreCredentials(ENDPOINT, "OTHER", "token", "")
        )
    assert (caught.value.code, caught.value.field) == ("invalid_store_code", "store_code")

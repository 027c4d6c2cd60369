"""Our client (`miva_connect.miva`) against the sandbox, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import httpx
import pytest

from miva_connect.miva import (
    AccessDenied,
    ApiOffline,
    HttpStatusError,
    InvalidResponse,
    InvalidSignature,
    MivaAuth,
    MivaClient,
    Redirected,
    StoreNotFound,
    TokenDisabled,
    decode_signing_key,
    probe,
    verify_credentials,
)
from miva_connect.sandbox import (
    DEMO_SIGNING_KEY,
    DEMO_STORE_CODE,
    DEMO_TOKEN_DISABLED,
    DEMO_TOKEN_GOOD,
    DEMO_TOKEN_PRODUCTS_ONLY,
    DEMO_TOKEN_UNSIGNED_OK,
    DEMO_TOKEN_WRONG_IP,
    GROUP_CUSTOMERS,
    GROUP_ORDERS,
    GROUP_PRODUCTS,
    Sandbox,
    SandboxStore,
)

OTHER_KEY = "b3RoZXItc2lnbmluZy1rZXktMzItYnl0ZXMhISEhISE="


@pytest.fixture
async def ahttp() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def client_for(
    http: httpx.AsyncClient,
    endpoint: str,
    token: str = DEMO_TOKEN_GOOD,
    key: str = DEMO_SIGNING_KEY,
    digest: Literal["sha256", "sha1"] = "sha256",
    store_code: str = DEMO_STORE_CODE,
) -> MivaClient:
    return MivaClient(http, endpoint, store_code, MivaAuth(token, decode_signing_key(key), digest))


@pytest.mark.parametrize("digest", ["sha256", "sha1"])
async def test_our_signed_call_is_accepted(
    ahttp: httpx.AsyncClient, endpoint: str, digest: Literal["sha256", "sha1"]
) -> None:
    payload = await client_for(ahttp, endpoint, digest=digest).call("Store_Load")

    assert payload["data"]["name"] == "Demo Store"


async def test_our_client_with_a_wrong_key(ahttp: httpx.AsyncClient, endpoint: str) -> None:
    with pytest.raises(InvalidSignature):
        await client_for(ahttp, endpoint, key=OTHER_KEY).call("Store_Load")


async def test_verify_good_token(ahttp: httpx.AsyncClient, endpoint: str) -> None:
    result = await verify_credentials(client_for(ahttp, endpoint, store_code="demo"))

    assert (result.store_code, result.store_name) == ("DEMO", "Demo Store")
    assert set(result.granted_groups) == {GROUP_PRODUCTS, GROUP_ORDERS, GROUP_CUSTOMERS}
    assert result.missing_groups == ()
    assert result.signature_enforced is True


async def test_verify_products_only_token(ahttp: httpx.AsyncClient, endpoint: str) -> None:
    result = await verify_credentials(client_for(ahttp, endpoint, DEMO_TOKEN_PRODUCTS_ONLY))

    assert result.granted_groups == (GROUP_PRODUCTS,)
    assert set(result.missing_groups) == {GROUP_ORDERS, GROUP_CUSTOMERS}


async def test_verify_token_that_accepts_unsigned(ahttp: httpx.AsyncClient, endpoint: str) -> None:
    result = await verify_credentials(
        client_for(ahttp, endpoint, DEMO_TOKEN_UNSIGNED_OK, OTHER_KEY)
    )

    assert result.signature_enforced is False


@pytest.mark.parametrize(
    ("token", "error"),
    [(DEMO_TOKEN_DISABLED, TokenDisabled), (DEMO_TOKEN_WRONG_IP, AccessDenied)],
)
async def test_verify_refused_tokens(
    ahttp: httpx.AsyncClient, endpoint: str, token: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await verify_credentials(client_for(ahttp, endpoint, token))


async def test_verify_unknown_store(ahttp: httpx.AsyncClient, endpoint: str) -> None:
    with pytest.raises(StoreNotFound):
        await verify_credentials(client_for(ahttp, endpoint, store_code="NOPE"))


async def test_our_multicall_continues_over_206(
    ahttp: httpx.AsyncClient, endpoint: str, sandbox: Sandbox
) -> None:
    sandbox.add_store(SandboxStore(code=DEMO_STORE_CODE, name="Demo Store", record_count=5))
    sandbox.max_operations_per_request = 2
    ops = [{"Function": "ProductList_Load_Query", "Count": 1, "Offset": i} for i in range(5)]

    results = await client_for(ahttp, endpoint).multicall(ops)

    assert [r["data"]["data"][0]["id"] for r in results] == [1, 2, 3, 4, 5]
    assert [r.headers.get("range") for r in sandbox.requests] == [
        None,
        "Operations=3-5",
        "Operations=5-5",
    ]
    assert len({r.body for r in sandbox.requests}) == 1  # the identical body each time


async def test_probe_accepts_json_mvc(ahttp: httpx.AsyncClient, endpoint: str) -> None:
    await probe(ahttp, endpoint)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/", InvalidResponse),
        ("/mm5/admin.mvc", InvalidResponse),
        ("/old/mm5/json.mvc", Redirected),
        ("/protected/mm5/json.mvc", HttpStatusError),
        ("/html/mm5/json.mvc", InvalidResponse),
        ("/empty/mm5/json.mvc", InvalidResponse),
        ("/broken/mm5/json.mvc", HttpStatusError),
        ("/store/json.mvc", HttpStatusError),
    ],
)
async def test_probe_rejects_what_is_not_json_mvc(
    ahttp: httpx.AsyncClient, base_url: str, path: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await probe(ahttp, base_url + path)


async def test_probe_reports_api_offline(
    ahttp: httpx.AsyncClient, endpoint: str, sandbox: Sandbox
) -> None:
    sandbox.api_offline = True

    with pytest.raises(ApiOffline):
        await probe(ahttp, endpoint)

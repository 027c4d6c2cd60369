"""Cross-check against Miva's official Python SDK (merchantapi 2.7.0), over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from typing import Any

import pytest
from merchantapi.client import Client
from merchantapi.multicall import MultiCallRequest
from merchantapi.request import ProductListLoadQuery, StoreLoad

from miva_connect.sandbox import (
    DEMO_SIGNING_KEY,
    DEMO_STORE_CODE,
    DEMO_TOKEN_GOOD,
    DEMO_TOKEN_UNSIGNED_OK,
    Sandbox,
    SandboxStore,
)

OTHER_KEY = "b3RoZXItc2lnbmluZy1rZXktMzItYnl0ZXMhISEhISE="


def sdk_client(endpoint: str, token: str, key: str, **options: Any) -> Client:
    return Client(endpoint, token, key, {"default_store_code": DEMO_STORE_CODE, **options})


def store_load(client: Client) -> Any:
    return StoreLoad(client).send()


@pytest.mark.parametrize("digest", ["sha256", "sha1"])
async def test_sdk_signed_store_load_is_accepted(endpoint: str, digest: str) -> None:
    client = sdk_client(endpoint, DEMO_TOKEN_GOOD, DEMO_SIGNING_KEY, signing_key_digest=digest)

    response = await asyncio.to_thread(store_load, client)

    assert response.is_success(), response.get_error_message()
    assert response.get_store().get_code() == "DEMO"
    assert response.get_store().get_name() == "Demo Store"


@pytest.mark.parametrize("digest", ["sha256", "sha1"])
async def test_sdk_with_another_signing_key_is_refused(endpoint: str, digest: str) -> None:
    client = sdk_client(endpoint, DEMO_TOKEN_GOOD, OTHER_KEY, signing_key_digest=digest)

    response = await asyncio.to_thread(store_load, client)

    assert not response.is_success()
    assert response.get_error_code() == "access_denied"
    assert response.get_error_message() == "Invalid request signature"


async def test_sdk_with_an_empty_key_still_signs_and_is_refused(endpoint: str) -> None:
    # SDK 2.7.0 HMACs with an empty key unless the digest is set to None.
    response = await asyncio.to_thread(store_load, sdk_client(endpoint, DEMO_TOKEN_GOOD, ""))

    assert response.get_error_message() == "Invalid request signature"


async def test_sdk_unsigned_request(endpoint: str) -> None:
    unsigned = {"signing_key_digest": None}
    refused = sdk_client(endpoint, DEMO_TOKEN_GOOD, "", **unsigned)
    accepted = sdk_client(endpoint, DEMO_TOKEN_UNSIGNED_OK, "", **unsigned)

    assert (await asyncio.to_thread(store_load, refused)).get_error_message() == (
        "Timestamp requires request signature"
    )
    assert (await asyncio.to_thread(store_load, accepted)).is_success()


def test_sdk_request_bytes_are_what_was_signed(endpoint: str, sandbox: Sandbox) -> None:
    store_load(sdk_client(endpoint, DEMO_TOKEN_GOOD, DEMO_SIGNING_KEY))

    sent = sandbox.requests[-1]
    kind, credential = sent.headers["x-miva-api-authorization"].split(" ")
    token, signature = credential.split(":")
    expected = hmac.new(base64.b64decode(DEMO_SIGNING_KEY), sent.body, hashlib.sha256).digest()
    assert (kind, token) == ("MIVA-HMAC-SHA256", DEMO_TOKEN_GOOD)
    assert base64.b64decode(signature) == expected
    assert b'"Miva_Request_Timestamp"' in sent.body


def test_sdk_list_query(endpoint: str) -> None:
    request = ProductListLoadQuery(sdk_client(endpoint, DEMO_TOKEN_GOOD, DEMO_SIGNING_KEY))
    request.set_count(2).set_offset(1)

    response = request.send()

    assert response.is_success(), response.get_error_message()
    assert response.get_total_count() == 3
    assert [p.get_code() for p in response.get_products()] == ["DEMO-P2", "DEMO-P3"]


def test_sdk_multicall_continues_over_206(endpoint: str, sandbox: Sandbox) -> None:
    # The SDK adds up each reply's Content-Range count, so the sandbox must answer the
    # count of that reply's operations (as Miva does), not an absolute position.
    sandbox.add_store(SandboxStore(code=DEMO_STORE_CODE, name="Demo Store", record_count=5))
    sandbox.max_operations_per_request = 2
    client = sdk_client(endpoint, DEMO_TOKEN_GOOD, DEMO_SIGNING_KEY)
    multicall = MultiCallRequest(client).set_auto_timeout_continue(True)
    for offset in range(5):
        multicall.add_request(ProductListLoadQuery(client).set_count(1).set_offset(offset))

    response = multicall.send()

    assert [r.headers.get("range") for r in sandbox.requests] == [
        None,
        "Operations=3-5",
        "Operations=5-5",
    ]
    assert [r.get_products()[0].get_id() for r in response.get_responses()] == [1, 2, 3, 4, 5]

"""Property-based fuzzing of every operation in the OpenAPI schema (schemathesis builds
the cases, hypothesis drives them): no 5xx, and every error has the documented shape.

The app under test cannot reach any store: private networks are refused, names
resolve to nothing, and its HTTP transport refuses every connection.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error

from miva_connect.channels.service import ChannelService, RegisteredChannel
from miva_connect.db.engine import Database
from miva_connect.settings import Settings
from tests.conftest import serve_app
from tests.helpers import StubResolver, open_session

MAX_EXAMPLES = 400


def _offline(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("offline: the fuzz app reaches no store", request=request)


@dataclass
class Target:
    client: httpx.AsyncClient
    cases: st.SearchStrategy[Case[Any]]


@pytest.fixture(scope="module")
async def fuzz_channel(database: Database) -> RegisteredChannel:
    return await ChannelService(database).register(
        "Fuzz Channel", "https://channel.example/return", slug=f"fuzz-{secrets.token_hex(6)}"
    )


@pytest.fixture(scope="module")
async def target(settings: Settings, fuzz_channel: RegisteredChannel) -> AsyncIterator[Target]:
    fuzz_settings = settings.model_copy(
        update={"allow_private_networks": False, "miva_timeout_seconds": 0.5}
    )
    async with serve_app(
        fuzz_settings,
        miva_transport=httpx.MockTransport(_offline),
        miva_resolver=StubResolver(),  # every name fails to resolve: no DNS query either
    ) as client:
        schema = schemathesis.openapi.from_dict((await client.get("/openapi.json")).json())
        session = await open_session(client, fuzz_channel)
        yield Target(client, _cases(schema, fuzz_channel, session))


def _cases(schema: Any, channel: RegisteredChannel, session: str) -> st.SearchStrategy[Case[Any]]:
    """Valid and invalid cases for every operation, with the channel's credentials; those
    with path parameters also against a real session and channel."""
    basic = base64.b64encode(f"{channel.id}:{channel.secret}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    known = {"id": session, "token": session, "channel_slug": channel.slug}
    strategies = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(generation_mode=mode, headers=headers))
        names = {p.name for p in operation.path_parameters}
        if names & known.keys():
            fixed = {name: known[name] for name in names & known.keys()}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategies.append(
                    operation.as_strategy(
                        generation_mode=mode, headers=headers, path_parameters=fixed
                    )
                )
    return st.one_of(strategies)


def _query(params: dict[str, Any]) -> list[tuple[str, str | int | float | bool | None]]:
    """Generated query parameters as flat pairs (negative cases nest objects in them)."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in params.items():
        for item in value if isinstance(value, list | dict) else [value]:
            if item is not None:
                pairs.append((str(name), item if isinstance(item, str) else str(item)))
    return pairs


async def _send(client: httpx.AsyncClient, case: Case[Any]) -> httpx.Response:
    sent = case.as_transport_kwargs(base_url="http://testserver")
    headers = [
        (name, value.encode("latin-1", "replace"))
        for name, value in sent.get("headers", {}).items()
        if name.lower() != "host"
    ]
    body: dict[str, Any] = {}
    if "json" in sent:
        body["json"] = sent["json"]
    elif sent.get("data") is not None:
        data = sent["data"]
        body["content"] = data.encode() if isinstance(data, str) else data
    return await client.request(
        sent["method"],
        sent["url"],
        params=_query(sent.get("params") or {}),
        headers=headers,
        **body,
    )


def _check_error_shape(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str), body
    assert error["code"], body
    assert isinstance(error.get("message"), str), body
    assert error["message"], body
    assert "field" in error, body
    assert error["field"] is None or isinstance(error["field"], str), body


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
async def test_no_operation_answers_5xx_and_errors_keep_their_shape(
    target: Target, data: st.DataObject
) -> None:
    case = data.draw(target.cases, label="case")
    response = await _send(target.client, case)
    case.validate_response(response, checks=[not_a_server_error])
    _check_error_shape(response)

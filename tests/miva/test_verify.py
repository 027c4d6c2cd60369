"""`verify_credentials` against a fake store that answers multicalls per operation."""

import asyncio
import gc
import json
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from miva_connect.miva import (
    AUTH_HEADER,
    ROLE_GROUP_PROBES,
    AccessDenied,
    ApiError,
    AuthenticationError,
    InvalidSignature,
    MivaAuth,
    MivaClient,
    StoreNotFound,
    TimestampRejected,
    TokenDisabled,
    Verification,
    decode_signing_key,
    verify_credentials,
)
from tests import canaries

ENDPOINT = "https://shop.example.com/mm5/json.mvc"
TOKEN = "0123456789abcdef0123456789abcdef"
KEY = b"example-signing-key-32-bytes!!!!"
GROUPS = tuple(ROLE_GROUP_PROBES)
STORE = {"success": 1, "data": {"id": 1, "code": "SC", "name": "Example Shop"}}
LISTED = {"success": 1, "data": {"total_count": 0, "start_offset": 0, "data": []}}


def refusal(message: str, code: str = "access_denied") -> dict[str, Any]:
    return {"success": 0, "error_code": code, "error_message": message}


@dataclass
class FakeStore:
    """json.mvc for one token: per-function denials, or a refusal of the whole request."""

    replies: dict[str, dict[str, Any]] = field(default_factory=dict)  # by function
    whole_reply: dict[str, Any] | None = None
    unsigned_reply: dict[str, Any] = field(
        default_factory=lambda: refusal("Timestamp requires request signature")
    )
    unsigned_hangs: bool = False
    signed_yields: bool = True  # a real round trip lets the other task run meanwhile
    signed_waits_for_unsigned: bool = False
    unsigned_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[httpx.Request] = field(default_factory=list)
    unsigned_cancelled: bool = False

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        if "Operations" not in body:
            return await self.single_store_load()
        if self.signed_yields:
            await asyncio.sleep(0)
        if self.signed_waits_for_unsigned:
            await self.unsigned_arrived.wait()
        if self.whole_reply is not None:
            return httpx.Response(200, json=self.whole_reply)
        return httpx.Response(200, json=[self.run(op["Function"]) for op in body["Operations"]])

    async def single_store_load(self) -> httpx.Response:
        """The only single call `verify_credentials` makes: the unsigned `Store_Load`."""
        self.unsigned_arrived.set()
        try:
            if self.unsigned_hangs:
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.unsigned_cancelled = True
            raise
        return httpx.Response(200, json=self.unsigned_reply)

    def run(self, function: str) -> dict[str, Any]:
        return self.replies.get(function, STORE if function == "Store_Load" else LISTED)

    async def verify(self, signing_key: bytes = KEY, token: str = TOKEN) -> Verification:
        async with httpx.AsyncClient(transport=httpx.MockTransport(self.handle)) as http:
            client = MivaClient(http, ENDPOINT, "sc", MivaAuth(token, signing_key))
            return await verify_credentials(client)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


class TestRoleGroups:
    async def test_all_groups_granted(self, store: FakeStore) -> None:
        result = await store.verify()
        assert result.granted_groups == GROUPS
        assert result.missing_groups == ()
        assert (result.store_code, result.store_name) == ("SC", "Example Shop")

    @pytest.mark.parametrize(
        ("group", "function"),
        [
            (group, function)
            for group, functions in ROLE_GROUP_PROBES.items()
            for function in functions
        ],
    )
    async def test_a_denied_probe_names_its_group(
        self, store: FakeStore, group: str, function: str
    ) -> None:
        store.replies[function] = refusal("Access denied")
        result = await store.verify()
        assert result.missing_groups == (group,)
        assert result.granted_groups == tuple(g for g in GROUPS if g != group)

    async def test_store_load_and_one_row_probes_share_one_multicall(
        self, store: FakeStore
    ) -> None:
        await store.verify(signing_key=b"")
        [request] = store.requests
        operations = json.loads(request.content)["Operations"]
        assert operations[0] == {"Function": "Store_Load"}
        assert all(op["Count"] == 1 for op in operations[1:])
        assert len(operations) == 1 + sum(len(fs) for fs in ROLE_GROUP_PROBES.values())

    async def test_an_unexpected_probe_error_raises(self, store: FakeStore) -> None:
        store.replies["OrderList_Load_Query"] = refusal("Invalid function", "invalid_function")
        with pytest.raises(ApiError):
            await store.verify()


class TestRefusals:
    async def test_failed_store_load_is_store_not_found(self, store: FakeStore) -> None:
        store.replies["Store_Load"] = refusal("Unable to open store 'sc'", "MER-DBE-OPN-00002")
        with pytest.raises(StoreNotFound) as caught:
            await store.verify()
        assert caught.value.code == "MER-DBE-OPN-00002"

    @pytest.mark.parametrize(
        ("message", "error"),
        [
            ("Access denied", AccessDenied),
            ("Token is disabled", TokenDisabled),
            ("Invalid request signature", InvalidSignature),
            ("Timestamp outside configured window", TimestampRejected),
        ],
    )
    async def test_whole_reply_auth_errors_propagate(
        self, store: FakeStore, message: str, error: type[AuthenticationError]
    ) -> None:
        store.whole_reply = refusal(message)
        with pytest.raises(error):
            await store.verify()


class TestSignatureEnforcement:
    async def test_unsigned_refused_means_enforced(self, store: FakeStore) -> None:
        store.unsigned_reply = refusal("Timestamp requires request signature")
        assert (await store.verify()).signature_enforced is True

    async def test_unsigned_accepted_means_not_enforced(self, store: FakeStore) -> None:
        store.unsigned_reply = STORE
        assert (await store.verify()).signature_enforced is False

    async def test_unclear_unsigned_answer_means_unknown(self, store: FakeStore) -> None:
        store.unsigned_reply = refusal("Access denied")
        assert (await store.verify()).signature_enforced is None

    async def test_unsigned_check_is_a_store_load_with_the_bare_token(
        self, store: FakeStore
    ) -> None:
        await store.verify()
        signed, unsigned = sorted(store.requests, key=lambda r: b"Operations" not in r.content)
        assert signed.headers[AUTH_HEADER].startswith(f"MIVA-HMAC-SHA256 {TOKEN}:")
        assert unsigned.headers[AUTH_HEADER] == f"MIVA {TOKEN}"
        assert json.loads(unsigned.content)["Function"] == "Store_Load"

    async def test_no_signing_key_accepted_means_not_enforced_in_one_request(
        self, store: FakeStore
    ) -> None:
        result = await store.verify(signing_key=b"")
        assert result.signature_enforced is False
        assert len(store.requests) == 1

    async def test_unsigned_check_runs_while_the_multicall_is_in_flight(
        self, store: FakeStore
    ) -> None:
        store.signed_waits_for_unsigned = True  # a sequential client would wait forever
        result = await asyncio.wait_for(store.verify(), timeout=5)
        assert result.signature_enforced is True

    async def test_cancelling_verification_cancels_the_unsigned_check(
        self, store: FakeStore
    ) -> None:
        store.unsigned_hangs = True
        verifying = asyncio.ensure_future(store.verify())
        await asyncio.wait_for(store.unsigned_arrived.wait(), timeout=5)
        verifying.cancel()
        with pytest.raises(asyncio.CancelledError):
            await verifying
        assert store.unsigned_cancelled


class TestCancellation:
    @pytest.mark.parametrize("unsigned_started", [True, False])
    async def test_signed_failure_cancels_the_unsigned_check(
        self, store: FakeStore, unsigned_started: bool
    ) -> None:
        store.unsigned_hangs = True
        store.whole_reply = refusal("Access denied")
        store.signed_yields = unsigned_started
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(AccessDenied):
                await store.verify()
            # The cancelled check finished before verify_credentials returned.
            assert store.unsigned_cancelled is unsigned_started
            assert len(store.requests) == (2 if unsigned_started else 1)
            gc.collect()
        assert [str(w.message) for w in caught] == []


class TestSecretsStayOut:
    async def test_traffic_logs_and_logged_failures_hold_no_secret(
        self, store: FakeStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        token, key_text = canaries.api_key(), canaries.signing_key()
        caplog.set_level(logging.DEBUG)
        caplog.set_level(logging.DEBUG, logger="httpx")  # the service keeps it at WARNING
        store.whole_reply = refusal("Invalid request signature")

        with pytest.raises(InvalidSignature) as caught:
            await store.verify(decode_signing_key(key_text), token=token)
        logging.getLogger(__name__).warning("miva.verify.failed", exc_info=caught.value)

        assert any(r.name == "httpx" for r in caplog.records)
        assert store.requests[0].headers[AUTH_HEADER].startswith(f"MIVA-HMAC-SHA256 {token}:")
        assert canaries.found_in(caplog.text + repr(caught.value)) == []


class TestUnsignedGrace:
    async def test_a_hanging_unsigned_check_does_not_hide_a_success(
        self, store: FakeStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from miva_connect.miva import verify

        monkeypatch.setattr(verify, "UNSIGNED_GRACE_SECONDS", 0.2)
        store.unsigned_hangs = True
        result = await asyncio.wait_for(store.verify(), timeout=5)
        assert result.signature_enforced is None
        assert result.store_name

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from miva_connect.channels.service import RegisteredChannel
from miva_connect.crypto import CredentialCipher
from miva_connect.db.engine import Database
from miva_connect.db.models import ChannelMerchant, Merchant, OnboardingSession
from miva_connect.sandbox import GROUP_CUSTOMERS, GROUP_ORDERS, GROUP_PRODUCTS, SandboxToken
from miva_connect.settings import Settings
from tests import canaries
from tests.conftest import EGRESS_IPS, SandboxServer
from tests.helpers import channel_auth, closed_port, open_session

ALL_GROUPS = [GROUP_PRODUCTS, GROUP_ORDERS, GROUP_CUSTOMERS]


def form(store_code: str, token: SandboxToken, **overrides: Any) -> dict[str, Any]:
    return {
        "store_code": store_code,
        "api_key": token.access_token,
        "signing_key": token.signing_key,
        **overrides,
    }


class Onboarding:
    """One channel's merchant going through the flow against the sandbox."""

    def __init__(
        self, client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
    ):
        self.client = client
        self.channel = channel
        self.sandbox = sandbox

    async def session(self, store_url: str | None = None) -> str:
        token = await open_session(self.client, self.channel, state="st-1")
        url = store_url or self.sandbox.endpoint
        response = await self.client.post(
            f"/v1/sessions/{token}/store-url", json={"store_url": url}
        )
        assert response.status_code == 200, response.text
        return token

    async def submit(self, session: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/v1/sessions/{session}/credentials", json=body)

    async def error(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.submit(await self.session(), body)
        assert response.status_code == 422, response.text
        error: dict[str, Any] = response.json()["error"]
        return error


@pytest.fixture
def onboarding(
    client: httpx.AsyncClient, channel: RegisteredChannel, sandbox: SandboxServer
) -> Onboarding:
    return Onboarding(client, channel, sandbox)


@pytest.fixture
def cipher(settings: Settings) -> CredentialCipher:
    return CredentialCipher([k.get_secret_value() for k in settings.encryption_keys])


async def merchant_row(database: Database, merchant_id: str) -> Merchant:
    async with database.transaction() as tx:
        merchant = await tx.get(Merchant, merchant_id)
    assert merchant is not None
    return merchant


class TestConnect:
    async def test_valid_credentials_connect_and_redirect(
        self,
        onboarding: Onboarding,
        sandbox: SandboxServer,
        database: Database,
        cipher: CredentialCipher,
    ) -> None:
        store = sandbox.new_store("Happy Store")
        token = sandbox.new_token()
        session = await onboarding.session()
        response = await onboarding.submit(session, form(store.code, token))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "connected"
        assert body["store_name"] == "Happy Store"
        assert body["warnings"] == []
        merchant_id = body["merchant_id"]
        assert body["redirect_url"] == (
            f"https://channel.example/return?src=miva&state=st-1&merchant_id={merchant_id}"
        )
        merchant = await merchant_row(database, merchant_id)
        assert merchant.store_url == sandbox.endpoint
        assert merchant.verified_groups == ALL_GROUPS
        assert merchant.signature_enforced is True
        context = f"merchant:{merchant_id}:"
        assert cipher.decrypt(merchant.api_key_ciphertext, context=context + "api_key") == (
            token.access_token
        )
        assert (
            cipher.decrypt(merchant.signing_key_ciphertext, context=context + "signing_key")
            == token.signing_key
        )
        redirect = await onboarding.client.get(f"/v1/sessions/{session}/redirect")
        assert redirect.status_code == 303
        assert redirect.headers["location"] == body["redirect_url"]
        status = await onboarding.client.get(f"/v1/sessions/{session}")
        assert status.json()["status"] == "connected"
        assert status.json()["merchant_id"] == merchant_id

    async def test_pasted_whitespace_and_unpadded_key_are_fine(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        body = form(
            f"  {store.code.lower()}\t",
            token,
            api_key=f" {token.access_token}\n",
            signing_key=f"\n{token.signing_key.rstrip('=')} ",
        )
        response = await onboarding.submit(await onboarding.session(), body)
        assert response.status_code == 200, response.text

    async def test_one_shot_client_sends_the_store_url_with_the_credentials(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        session = await open_session(onboarding.client, onboarding.channel)
        body = form(store.code, token, store_url=sandbox.base_url + "/mm5/")
        response = await onboarding.submit(session, body)
        assert response.status_code == 200, response.text

    async def test_the_whole_check_is_one_signed_multicall_and_one_unsigned_call(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        session = await onboarding.session()
        before = len(sandbox.state.requests)
        await onboarding.submit(session, form(store.code, token))
        sent = sandbox.state.requests[before:]
        headers = sorted(r.headers["x-miva-api-authorization"].split(" ")[0] for r in sent)
        assert headers == ["MIVA", "MIVA-HMAC-SHA256"]
        signed = next(r for r in sent if "HMAC" in r.headers["x-miva-api-authorization"])
        assert b'"Operations"' in signed.body
        assert b'"Count":1' in signed.body
        assert (
            abs(int(signed.body.split(b'"Miva_Request_Timestamp":')[1].rstrip(b"}")) - time.time())
            < 5
        )

    async def test_unsigned_token_connects_with_a_warning(
        self, onboarding: Onboarding, sandbox: SandboxServer, database: Database
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token(require_signature=False)
        response = await onboarding.submit(await onboarding.session(), form(store.code, token))
        assert response.status_code == 200
        warnings = response.json()["warnings"]
        assert [w["code"] for w in warnings] == ["signature_not_enforced"]
        assert "Require Signature with Key" in warnings[0]["message"]
        merchant = await merchant_row(database, response.json()["merchant_id"])
        assert merchant.signature_enforced is False

    async def test_empty_signing_key_sends_unsigned_requests(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token(require_signature=False, signing_key="")
        session = await onboarding.session()
        before = len(sandbox.state.requests)
        response = await onboarding.submit(session, form(store.code, token, signing_key=""))
        assert response.status_code == 200, response.text
        assert [w["code"] for w in response.json()["warnings"]] == ["signature_not_enforced"]
        sent = sandbox.state.requests[before:]
        assert [r.headers["x-miva-api-authorization"].split(" ")[0] for r in sent] == ["MIVA"]


class TestRejections:
    async def test_unknown_api_key(self, onboarding: Onboarding, sandbox: SandboxServer) -> None:
        store = sandbox.new_store()
        token = SandboxToken(canaries.api_key(), canaries.signing_key())  # never registered
        error = await onboarding.error(form(store.code, token))
        assert (error["code"], error["field"]) == ("access_denied", "api_key")
        assert error["egress_ips"] == EGRESS_IPS
        assert all(ip in error["message"] for ip in EGRESS_IPS)
        assert "Allowed IP Address(es)" in error["message"]

    async def test_our_address_not_allowed(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token(allowed_ips="203.0.113.7, 2001:db8::/32")
        assert (await onboarding.error(form(store.code, token)))["code"] == "access_denied"

    async def test_disabled_token(self, onboarding: Onboarding, sandbox: SandboxServer) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token(disabled=True)
        error = await onboarding.error(form(store.code, token))
        assert (error["code"], error["field"]) == ("token_disabled", "api_key")

    async def test_wrong_signing_key(self, onboarding: Onboarding, sandbox: SandboxServer) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        error = await onboarding.error(form(store.code, token, signing_key=canaries.signing_key()))
        assert (error["code"], error["field"]) == ("invalid_signature", "signing_key")

    async def test_missing_signing_key(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        error = await onboarding.error(form(store.code, token, signing_key=""))
        assert (error["code"], error["field"]) == ("signature_required", "signing_key")

    async def test_timestamp_outside_the_window(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token(require_timestamp=True, timestamp_window=-1)
        assert (await onboarding.error(form(store.code, token)))["code"] == "timestamp_rejected"

    async def test_timestamp_inside_the_window_passes(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token(require_timestamp=True, timestamp_window=30)
        response = await onboarding.submit(await onboarding.session(), form(store.code, token))
        assert response.status_code == 200

    async def test_unknown_store_code(self, onboarding: Onboarding, sandbox: SandboxServer) -> None:
        token = sandbox.new_token()
        error = await onboarding.error(form("NO-SUCH-STORE", token))
        assert (error["code"], error["field"]) == ("invalid_store_code", "store_code")
        assert "Store Settings" in error["message"]

    @pytest.mark.parametrize(
        "granted",
        [[GROUP_PRODUCTS], [GROUP_ORDERS, GROUP_CUSTOMERS], [GROUP_PRODUCTS, GROUP_CUSTOMERS], []],
    )
    async def test_missing_role_groups_are_named(
        self, onboarding: Onboarding, sandbox: SandboxServer, granted: list[str]
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token(groups=frozenset(granted))
        error = await onboarding.error(form(store.code, token))
        missing = [g for g in ALL_GROUPS if g not in granted]
        assert error["code"] == "missing_permissions"
        assert error["missing_groups"] == missing
        assert all(group in error["message"] for group in missing)
        assert "Groups tab" in error["message"]

    async def test_api_offline(self, onboarding: Onboarding, sandbox: SandboxServer) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        session = await onboarding.session()
        sandbox.state.api_offline = True
        try:
            response = await onboarding.submit(session, form(store.code, token))
        finally:
            sandbox.state.api_offline = False
        assert response.json()["error"]["code"] == "store_api_offline"

    @pytest.mark.parametrize(
        ("path", "code"),
        [
            ("/protected/mm5/", "not_a_miva_store"),
            ("/html/mm5/", "not_a_miva_store"),
            ("/empty/mm5/", "not_a_miva_store"),
            ("/old/mm5/", "store_redirected"),
            ("/broken/mm5/", "store_error"),
        ],
    )
    async def test_endpoint_problems_found_with_the_credentials(
        self, onboarding: Onboarding, sandbox: SandboxServer, path: str, code: str
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        session = await open_session(onboarding.client, onboarding.channel)
        body = form(store.code, token, store_url=sandbox.base_url + path)
        response = await onboarding.submit(session, body)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == code

    async def test_unreachable_store(self, onboarding: Onboarding, sandbox: SandboxServer) -> None:
        token = sandbox.new_token()
        url = f"http://127.0.0.1:{closed_port()}/mm5/json.mvc"
        session = await open_session(onboarding.client, onboarding.channel)
        response = await onboarding.submit(session, form("S", token, store_url=url))
        assert response.json()["error"]["code"] == "store_unreachable"


class TestInputChecks:
    @pytest.mark.parametrize(
        "signing_key",
        ["not base64!", "YWJj-_==", "YWJj ZGVm", "YW=Jj", "=" * 4, "Q" * 300],
    )
    async def test_signing_key_must_be_strict_base64(
        self, onboarding: Onboarding, sandbox: SandboxServer, signing_key: str
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        session = await onboarding.session()
        before = len(sandbox.state.requests)
        response = await onboarding.submit(
            session, form(store.code, token, signing_key=signing_key)
        )
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("invalid_signing_key", "signing_key")
        assert len(sandbox.state.requests) == before

    @pytest.mark.parametrize(
        ("overrides", "code", "field"),
        [
            ({"store_code": "  "}, "invalid_store_code", "store_code"),
            ({"store_code": "S" * 65}, "invalid_store_code", "store_code"),
            ({"store_code": "straße"}, "invalid_store_code", "store_code"),
            ({"store_code": "MY STORE"}, "invalid_store_code", "store_code"),
            ({"api_key": "has space"}, "invalid_api_key", "api_key"),
            ({"api_key": "has:colon"}, "invalid_api_key", "api_key"),
            ({"api_key": ""}, "invalid_api_key", "api_key"),
        ],
    )
    async def test_formats_are_checked_before_any_request(
        self,
        onboarding: Onboarding,
        sandbox: SandboxServer,
        overrides: dict[str, str],
        code: str,
        field: str,
    ) -> None:
        token = sandbox.new_token()
        session = await onboarding.session()
        before = len(sandbox.state.requests)
        response = await onboarding.submit(session, {**form("S", token), **overrides})
        error = response.json()["error"]
        assert (error["code"], error["field"]) == (code, field)
        assert len(sandbox.state.requests) == before

    async def test_store_url_is_needed_first(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        token = sandbox.new_token()
        session = await open_session(onboarding.client, onboarding.channel)
        response = await onboarding.submit(session, form("S", token))
        assert response.json()["error"]["code"] == "store_url_required"

    async def test_missing_fields_never_echo_what_was_sent(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        token = sandbox.new_token()
        session = await onboarding.session()
        response = await onboarding.submit(
            session, {"api_key": token.access_token, "signing_key": token.signing_key}
        )
        assert response.status_code == 422
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("invalid_request", "store_code")
        assert token.access_token not in response.text

    @pytest.mark.parametrize(
        "body", [[], "text", {"store_code": 1, "api_key": ["x"]}, {"api_key": {"a": 1}}]
    )
    async def test_odd_json_is_a_clear_422(self, onboarding: Onboarding, body: Any) -> None:
        response = await onboarding.submit(await onboarding.session(), body)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"


class TestAttempts:
    async def test_failure_keeps_only_the_outcome_and_the_retry_succeeds(
        self, onboarding: Onboarding, sandbox: SandboxServer, database: Database
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        session = await onboarding.session()
        wrong = await onboarding.submit(
            session, form(store.code, token, signing_key=canaries.signing_key())
        )
        assert wrong.status_code == 422
        async with database.transaction() as tx:
            row = await tx.scalar(
                select(OnboardingSession).where(
                    OnboardingSession.token_hash == hashlib.sha256(session.encode()).hexdigest()
                )
            )
            merchants = (
                await tx.scalars(select(Merchant).where(Merchant.store_code == store.code))
            ).all()
        assert row is not None
        assert (row.status, row.last_error_code) == ("pending", "invalid_signature")
        assert merchants == []
        right = await onboarding.submit(session, form(store.code, token))
        assert right.status_code == 200

    async def test_a_connected_session_cannot_be_submitted_again(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        session = await onboarding.session()
        assert (await onboarding.submit(session, form(store.code, token))).status_code == 200
        again = await onboarding.submit(session, form(store.code, token))
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "session_completed"

    async def test_reconnecting_a_store_keeps_its_merchant_id_and_replaces_credentials(
        self,
        onboarding: Onboarding,
        sandbox: SandboxServer,
        database: Database,
        cipher: CredentialCipher,
    ) -> None:
        store = sandbox.new_store()
        first_token, second_token = sandbox.new_token(), sandbox.new_token()
        first = await onboarding.submit(await onboarding.session(), form(store.code, first_token))
        second = await onboarding.submit(
            await onboarding.session(), form(store.code.lower(), second_token)
        )
        merchant_id = first.json()["merchant_id"]
        assert second.json()["merchant_id"] == merchant_id
        merchant = await merchant_row(database, merchant_id)
        context = f"merchant:{merchant_id}:api_key"
        assert cipher.decrypt(merchant.api_key_ciphertext, context=context) == (
            second_token.access_token
        )

    async def test_another_channel_links_the_same_merchant(
        self,
        onboarding: Onboarding,
        sandbox: SandboxServer,
        database: Database,
        client: httpx.AsyncClient,
    ) -> None:
        from miva_connect.channels.service import ChannelService

        other = await ChannelService(database).register(
            "Other Channel", "https://other.example/back", slug=f"other-{time.time_ns()}"
        )
        store = sandbox.new_store()
        token = sandbox.new_token()
        mine = await onboarding.submit(await onboarding.session(), form(store.code, token))
        theirs = await Onboarding(client, other, sandbox).submit(
            await Onboarding(client, other, sandbox).session(), form(store.code, token)
        )
        merchant_id = mine.json()["merchant_id"]
        assert theirs.json()["merchant_id"] == merchant_id
        assert theirs.json()["redirect_url"].startswith("https://other.example/back?state=")
        async with database.transaction() as tx:
            links = (
                await tx.scalars(
                    select(ChannelMerchant.channel_id).where(
                        ChannelMerchant.merchant_id == merchant_id
                    )
                )
            ).all()
        assert sorted(links) == sorted([onboarding.channel.id, other.id])
        for channel in (onboarding.channel, other):
            response = await client.get(f"/v1/merchants/{merchant_id}", auth=channel_auth(channel))
            assert response.status_code == 200

    async def test_concurrent_submits_for_one_store_create_one_merchant(
        self, onboarding: Onboarding, sandbox: SandboxServer, database: Database
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        sessions = [await onboarding.session() for _ in range(5)]
        responses = await asyncio.gather(
            *(onboarding.submit(s, form(store.code, token)) for s in sessions)
        )
        assert [r.status_code for r in responses] == [200] * 5
        assert len({r.json()["merchant_id"] for r in responses}) == 1
        async with database.transaction() as tx:
            count = len(
                (
                    await tx.scalars(select(Merchant.id).where(Merchant.store_code == store.code))
                ).all()
            )
        assert count == 1

    async def test_concurrent_submits_of_one_session_connect_once(
        self, onboarding: Onboarding, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        session = await onboarding.session()
        responses = await asyncio.gather(
            *(onboarding.submit(session, form(store.code, token)) for _ in range(4))
        )
        assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]


class TestDeadline:
    @pytest.fixture
    def slow_store(self, sandbox: SandboxServer) -> Iterator[None]:
        sandbox.state.login_delay = 3.0
        try:
            yield
        finally:
            sandbox.state.login_delay = 0.0

    @pytest.mark.usefixtures("slow_store")
    async def test_a_slow_failure_is_answered_within_the_deadline(
        self,
        short_deadline_client: httpx.AsyncClient,
        channel: RegisteredChannel,
        sandbox: SandboxServer,
    ) -> None:
        store = sandbox.new_store()
        token = SandboxToken(canaries.api_key(), base64.b64encode(b"k" * 32).decode())
        session = await open_session(short_deadline_client, channel)
        started = time.monotonic()
        response = await short_deadline_client.post(
            f"/v1/sessions/{session}/credentials",
            json=form(store.code, token, store_url=sandbox.endpoint),
        )
        elapsed = time.monotonic() - started
        assert response.json()["error"]["code"] == "store_unreachable"
        assert elapsed < 1.5

"""The merchant's pages, server-side: steps, forms, errors, CSRF, headers and accessibility."""

from __future__ import annotations

from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from miva_connect.channels.service import RegisteredChannel
from miva_connect.db.engine import Database
from miva_connect.sandbox import GROUP_CUSTOMERS, GROUP_ORDERS, GROUP_PRODUCTS, SandboxToken
from miva_connect.settings import Settings
from miva_connect.web.csrf import form_token
from tests import canaries
from tests.api.test_sessions import expire
from tests.conftest import EGRESS_IPS, SandboxServer, serve_app
from tests.helpers import open_session

SECRET_FIELDS = ("api_key", "signing_key")


class Page(HTMLParser):
    """The parts of a page the tests look at: inputs, labels, headings, the `lang`."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.lang: str | None = None
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.hidden: dict[str, str] = {}
        self.labels: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self.h1 = 0
        self._label_for: str | None = None
        self._id_stack: list[str | None] = []
        self._text_by_id: dict[str, list[str]] = {}
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.lang = attributes.get("lang")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "label":
            self._label_for = attributes.get("for")
            self.labels[self._label_for or ""] = ""
        elif tag == "input":
            name = attributes.get("name") or ""
            if attributes.get("type") == "hidden":
                self.hidden[name] = attributes.get("value") or ""
            else:
                self.inputs[name] = attributes
        element_id = attributes.get("id")
        if element_id and tag not in ("input", "br", "meta", "link"):
            self._text_by_id.setdefault(element_id, [])
            self._id_stack.append(element_id)
        elif tag not in ("input", "br", "meta", "link"):
            self._id_stack.append(None)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_for = None
        if tag not in ("input", "br", "meta", "link") and self._id_stack:
            self._id_stack.pop()

    def handle_data(self, data: str) -> None:
        if self._label_for is not None:
            self.labels[self._label_for] += data
        for element_id in self._id_stack:
            if element_id:
                self._text_by_id[element_id].append(data)

    def text_of(self, element_id: str) -> str:
        return " ".join(" ".join(self._text_by_id.get(element_id, [])).split())


def assert_accessible(response: httpx.Response) -> Page:
    assert response.headers["content-type"].startswith("text/html")
    page = Page(response.text)
    assert page.lang == "en"
    assert page.h1 == 1
    for name, attributes in page.inputs.items():
        assert attributes.get("id") == name
        assert page.labels.get(name, "").strip(), f"no label for {name}"
    return page


def assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp


class Merchant:
    """A merchant's browser on a session's pages, without JavaScript."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.token = token
        self.path = f"/connect/sessions/{token}"

    async def page(self, **params: Any) -> httpx.Response:
        return await self.client.get(self.path, params=params)

    async def post(
        self, step: str, data: dict[str, str], *, csrf: str | None = None, **headers: str
    ) -> httpx.Response:
        body = {"csrf_token": form_token(self.token) if csrf is None else csrf, **data}
        return await self.client.post(f"{self.path}/{step}", data=body, headers=headers)

    async def store_url(self, url: str) -> httpx.Response:
        return await self.post("store-url", {"store_url": url})

    async def credentials(
        self, store_code: str, token: SandboxToken, **over: str
    ) -> httpx.Response:
        data = {
            "store_code": store_code,
            "api_key": token.access_token,
            "signing_key": token.signing_key,
            **over,
        }
        return await self.post("credentials", data)


@pytest.fixture
async def merchant(client: httpx.AsyncClient, channel: RegisteredChannel) -> Merchant:
    return Merchant(client, await open_session(client, channel))


async def at_step_two(merchant: Merchant, sandbox: SandboxServer) -> Merchant:
    response = await merchant.store_url(sandbox.endpoint)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == merchant.path
    return merchant


def assert_no_secrets(response: httpx.Response, token: SandboxToken) -> None:
    assert token.access_token not in response.text
    if token.signing_key:
        assert token.signing_key not in response.text


class TestSteps:
    async def test_step_one_asks_for_the_store_url(self, merchant: Merchant) -> None:
        response = await merchant.page()
        assert response.status_code == 200
        page = assert_accessible(response)
        assert_security_headers(response)
        assert list(page.inputs) == ["store_url"]
        assert page.labels["store_url"].strip() == "Store URL"
        assert "Test Channel" in response.text
        assert "Settings &gt; User Management &gt; API Tokens" in response.text
        assert "Copy next to Endpoint URL" in response.text
        assert "https://www.yourstore.com/mm5/json.mvc" in response.text
        assert page.hidden["csrf_token"] == form_token(merchant.token)
        assert '<link rel="stylesheet" href="/static/app.css">' in response.text
        assert "<style" not in response.text
        assert "<script>" not in response.text

    async def test_step_two_shows_the_endpoint_checklist_and_the_form(
        self, merchant: Merchant, sandbox: SandboxServer
    ) -> None:
        await at_step_two(merchant, sandbox)
        response = await merchant.page()
        assert response.status_code == 200
        page = assert_accessible(response)
        assert list(page.inputs) == ["store_code", "api_key", "signing_key"]
        assert page.labels["api_key"].strip() == "API Key (Access Token)"
        assert page.labels["signing_key"].strip() == "Signing Key"
        assert page.inputs["api_key"]["type"] == "password"
        assert page.inputs["signing_key"]["type"] == "password"
        # Tokens that accept unsigned requests have no signing key.
        assert "required" in page.inputs["api_key"]
        assert "required" not in page.inputs["signing_key"]
        assert sandbox.endpoint in response.text
        assert f'href="{merchant.path}?change=1"' in response.text
        for expected in [
            *EGRESS_IPS,
            "Require Signature with Key",
            GROUP_PRODUCTS,
            GROUP_ORDERS,
            GROUP_CUSTOMERS,
            "Settings > Store Settings",
            "Access Token",
            "Signature section",
        ]:
            assert expected in unescape(response.text), expected
        # The channel's origin may receive the form's final redirect.
        assert (
            "form-action 'self' https://channel.example"
            in response.headers["content-security-policy"]
        )

    async def test_the_store_url_can_be_changed(
        self, merchant: Merchant, sandbox: SandboxServer
    ) -> None:
        await at_step_two(merchant, sandbox)
        response = await merchant.page(change="1")
        page = assert_accessible(response)
        assert list(page.inputs) == ["store_url"]
        assert page.inputs["store_url"]["value"] == sandbox.endpoint

    async def test_static_assets_are_served(self, client: httpx.AsyncClient) -> None:
        css = await client.get("/static/app.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert "@media" in css.text
        js = await client.get("/static/app.js")
        assert js.status_code == 200
        assert_security_headers(js)


class TestHappyPath:
    async def test_forms_end_in_a_redirect_to_the_channel(
        self, merchant: Merchant, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        await at_step_two(merchant, sandbox)
        response = await merchant.credentials(store.code, token)
        assert response.status_code == 303, response.text
        location = urlsplit(response.headers["location"])
        assert (location.scheme, location.netloc, location.path) == (
            "https",
            "channel.example",
            "/return",
        )
        query = parse_qs(location.query)
        assert query["src"] == ["miva"]
        assert query["state"] == ["state-123"]
        assert query["merchant_id"][0]

        done = await merchant.page()
        assert done.status_code == 200
        assert_accessible(done)
        assert "Your store is connected" in done.text
        assert f'href="{response.headers["location"].replace("&", "&amp;")}"' in done.text
        assert not Page(done.text).inputs

        again = await merchant.credentials(store.code, token)
        assert again.status_code == 303
        assert again.headers["location"] == merchant.path

    async def test_the_link_of_a_channel_still_opens_a_session(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        response = await client.get(f"/connect/{channel.slug}", params={"state": "s"})
        assert response.status_code == 303
        location = response.headers["location"]
        assert location.startswith("http://testserver/connect/sessions/")
        canaries.bearer(location.rsplit("/", 1)[1])
        assert (await client.get(location)).status_code == 200

    async def test_an_unsigned_token_shows_its_warning_before_continuing(
        self, merchant: Merchant, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token(require_signature=False)
        await at_step_two(merchant, sandbox)
        response = await merchant.credentials(store.code, token)
        assert response.status_code == 200, response.text
        assert_accessible(response)
        assert_no_secrets(response, token)
        assert 'id="warning-signature_not_enforced"' in response.text
        assert "Require Signature with Key" in response.text
        assert 'href="https://channel.example/return?src=miva&amp;state=state-123' in response.text


class TestErrors:
    async def test_a_bad_store_url_is_shown_on_its_field(self, merchant: Merchant) -> None:
        response = await merchant.store_url("not a url")
        assert response.status_code == 422
        page = assert_accessible(response)
        field = page.inputs["store_url"]
        assert field["aria-invalid"] == "true"
        assert "autofocus" in field
        assert (field["aria-describedby"] or "").split() == ["store_url-error", "store_url-help"]
        assert "not a store URL we can use" in page.text_of("store_url-error")
        assert field["value"] == "not a url"

    async def test_a_wrong_signing_key_is_tied_to_its_field_and_a_retry_succeeds(
        self, merchant: Merchant, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        wrong = canaries.signing_key()
        await at_step_two(merchant, sandbox)
        response = await merchant.credentials(store.code, token, signing_key=wrong)
        assert response.status_code == 422
        page = assert_accessible(response)
        assert_no_secrets(response, token)
        assert wrong not in response.text
        assert "Signing Key does not match" in page.text_of("signing_key-error")
        assert page.inputs["signing_key"]["aria-invalid"] == "true"
        assert "autofocus" in page.inputs["signing_key"]
        assert "aria-invalid" not in page.inputs["api_key"]
        assert page.inputs["store_code"]["value"] == store.code
        for name in SECRET_FIELDS:
            assert page.inputs[name]["value"] == ""

        retry = await merchant.credentials(store.code, token)
        assert retry.status_code == 303, retry.text
        assert retry.headers["location"].startswith("https://channel.example/return?")

    async def test_missing_groups_are_named(
        self, merchant: Merchant, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token(groups=frozenset({GROUP_PRODUCTS}))
        await at_step_two(merchant, sandbox)
        response = await merchant.credentials(store.code, token)
        assert response.status_code == 422
        page = assert_accessible(response)
        assert_no_secrets(response, token)
        alert = page.text_of("form-error")
        assert '<div class="alert" role="alert" id="form-error" tabindex="-1" autofocus>' in (
            response.text
        )
        assert "Missing groups:" in alert
        assert GROUP_ORDERS in alert
        assert GROUP_CUSTOMERS in alert

    async def test_access_denied_lists_the_addresses(
        self, merchant: Merchant, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token(allowed_ips="203.0.113.9")
        await at_step_two(merchant, sandbox)
        response = await merchant.credentials(store.code, token)
        assert response.status_code == 422
        page = assert_accessible(response)
        assert_no_secrets(response, token)
        text = page.text_of("api_key-error")
        for address in EGRESS_IPS:
            assert address in text
        assert "spaces" in text
        assert page.inputs["api_key"]["aria-invalid"] == "true"

    async def test_credentials_before_a_store_url_go_back_to_step_one(
        self, merchant: Merchant, sandbox: SandboxServer
    ) -> None:
        token = sandbox.new_token()
        response = await merchant.credentials("MYSTORE", token)
        assert response.status_code == 422
        page = assert_accessible(response)
        assert_no_secrets(response, token)
        assert list(page.inputs) == ["store_url"]
        assert page.inputs["store_url"]["aria-invalid"] == "true"

    async def test_expired_and_unknown_sessions(
        self, merchant: Merchant, client: httpx.AsyncClient, database: Database
    ) -> None:
        unknown = await client.get("/connect/sessions/no-such-session")
        assert unknown.status_code == 404
        assert_accessible(unknown)
        assert_security_headers(unknown)
        assert "not valid" in unknown.text
        assert "start connecting your store again" in unknown.text

        await expire(database, merchant.token)
        for response in (
            await merchant.page(),
            await merchant.store_url("https://shop.example/mm5/json.mvc"),
        ):
            assert response.status_code == 410
            assert_accessible(response)
            assert "has expired" in response.text
            assert "start connecting your store again" in response.text


class TestRateLimits:
    async def test_the_message_is_shown_on_the_page(
        self, settings: Any, channel: RegisteredChannel, sandbox: SandboxServer
    ) -> None:
        from tests.conftest import serve_app

        limited = settings.model_copy(update={"rate_limit_per_session": "1 per hour"})
        async with serve_app(limited) as http:
            merchant = Merchant(http, await open_session(http, channel))
            await at_step_two(merchant, sandbox)
            response = await merchant.store_url(sandbox.endpoint)
            assert response.status_code == 429
            assert response.headers["retry-after"]
            page = assert_accessible(response)
            assert "Too many attempts" in page.text_of("form-error")


class TestCsrf:
    @pytest.mark.parametrize(
        ("csrf", "headers"),
        [
            ("", {}),
            ("0" * 64, {}),
            (None, {"Origin": "https://evil.example"}),
            (None, {"Origin": "null"}),
            (None, {"Sec-Fetch-Site": "cross-site"}),
        ],
        ids=["no-token", "wrong-token", "foreign-origin", "null-origin", "cross-site"],
    )
    async def test_refused_before_any_outbound_call(
        self,
        merchant: Merchant,
        sandbox: SandboxServer,
        csrf: str | None,
        headers: dict[str, str],
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        before = len(sandbox.state.requests)
        for step, data in [
            ("store-url", {"store_url": sandbox.endpoint}),
            (
                "credentials",
                {
                    "store_code": store.code,
                    "api_key": token.access_token,
                    "signing_key": token.signing_key,
                    "store_url": sandbox.endpoint,
                },
            ),
        ]:
            response = await merchant.post(step, data, csrf=csrf, **headers)
            assert response.status_code == 403, (step, response.text)
            assert_accessible(response)
            assert_security_headers(response)
            assert_no_secrets(response, token)
        assert len(sandbox.state.requests) == before
        assert Page((await merchant.page()).text).inputs.keys() == {"store_url"}

    async def test_same_origin_headers_are_accepted(
        self, merchant: Merchant, sandbox: SandboxServer
    ) -> None:
        response = await merchant.post(
            "store-url",
            {"store_url": sandbox.endpoint},
            Origin="http://testserver",
            **{"Sec-Fetch-Site": "same-origin"},
        )
        assert response.status_code == 303

    async def test_the_token_of_another_session_is_refused(
        self, merchant: Merchant, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        other = await open_session(client, channel)
        response = await merchant.post(
            "store-url", {"store_url": "https://shop.example/mm5/json.mvc"}, csrf=form_token(other)
        )
        assert response.status_code == 403


class TestOddBodies:
    async def test_a_file_upload_is_not_a_form_we_read(self, merchant: Merchant) -> None:
        response = await merchant.client.post(
            f"{merchant.path}/store-url",
            data={"csrf_token": form_token(merchant.token)},
            files={"store_url": ("x.txt", b"https://shop.example/mm5/json.mvc")},
        )
        assert response.status_code == 400
        assert_accessible(response)
        assert "could not be read" in response.text

    async def test_a_json_body_is_refused_like_a_missing_token(self, merchant: Merchant) -> None:
        response = await merchant.client.post(
            f"{merchant.path}/store-url", json={"store_url": "https://shop.example/mm5/json.mvc"}
        )
        assert response.status_code == 403


def test_a_null_origin_passes_only_as_same_origin() -> None:
    """Chromium posts `Origin: null` under `Referrer-Policy: no-referrer` (seen in the
    browser tests); `Sec-Fetch-Site` still tells same-origin from cross-site."""
    from starlette.datastructures import Headers

    from miva_connect.web.csrf import same_origin_request

    public = "http://127.0.0.1:8000"
    assert same_origin_request(Headers({"origin": "null", "sec-fetch-site": "same-origin"}), public)
    assert not same_origin_request(Headers({"origin": "null"}), public)
    assert not same_origin_request(
        Headers({"origin": "null", "sec-fetch-site": "same-site"}), public
    )


class TestAppWideErrorsOnPages:
    async def test_a_body_over_the_limit_gets_a_page(
        self, client: httpx.AsyncClient, channel: RegisteredChannel
    ) -> None:
        session = await open_session(client, channel)
        response = await client.post(
            f"/connect/sessions/{session}/credentials", data={"api_key": "k" * 20_000}
        )
        assert response.status_code == 413
        assert response.headers["content-type"].startswith("text/html")
        assert "too large" in response.text

    async def test_a_database_outage_gets_a_page(self, settings: Settings) -> None:
        gone = settings.model_copy(
            update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
        )
        async with serve_app(gone) as http:
            response = await http.get("/connect/sessions/" + "x" * 43)
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("text/html")
        assert "reload this page" in response.text

"""A merchant in Chromium: from the channel's link to the channel's page."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Page, expect

from miva_connect.channels.service import RegisteredChannel
from miva_connect.db.engine import Database
from tests import canaries
from tests.api.test_sessions import expire
from tests.conftest import SandboxServer


async def step_store_url(page: Page, sandbox: SandboxServer) -> None:
    await page.get_by_label("Store URL").fill(f"{sandbox.base_url}/mm5/")
    await page.get_by_role("button", name="Next").click()
    await expect(page.get_by_text(sandbox.endpoint)).to_be_visible()


async def fill_credentials(page: Page, code: str, api_key: str, signing_key: str) -> None:
    await page.get_by_label("Store Code").fill(code)
    await page.get_by_label("API Key (Access Token)").fill(api_key)
    await page.get_by_label("Signing Key").fill(signing_key)
    await page.get_by_role("button", name="Connect my store").click()


async def test_happy_path_ends_on_the_channel_page(
    page: Page,
    web_url: str,
    web_channel: RegisteredChannel,
    sandbox: SandboxServer,
    screenshots: Path,
    database: Database,
) -> None:
    store, token = sandbox.new_store("Browser Store"), sandbox.new_token()
    await page.goto(f"{web_url}/connect/{web_channel.slug}?state=from-the-channel")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Acme Marketplace")
    await page.screenshot(path=screenshots / "1-store-url.png", full_page=True)
    await step_store_url(page, sandbox)
    await page.screenshot(path=screenshots / "2-credentials.png", full_page=True)
    await fill_credentials(page, store.code, token.access_token, token.signing_key)
    await page.wait_for_url(re.compile(r"/channel/return\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == ["from-the-channel"]
    assert re.fullmatch(r"[0-9a-f-]{36}", query["merchant_id"][0])
    await page.screenshot(path=screenshots / "5-back-at-the-channel.png", full_page=True)


async def test_wrong_signing_key_is_shown_at_its_field_and_the_retry_works(
    page: Page,
    web_url: str,
    web_channel: RegisteredChannel,
    sandbox: SandboxServer,
    screenshots: Path,
) -> None:
    store, token = sandbox.new_store(), sandbox.new_token()
    await page.goto(f"{web_url}/connect/{web_channel.slug}?state=s")
    await step_store_url(page, sandbox)
    await fill_credentials(page, store.code, token.access_token, canaries.signing_key())
    signing_key = page.get_by_label("Signing Key")
    await expect(signing_key).to_have_attribute("aria-invalid", "true")
    error = page.locator("#signing_key-error")
    await expect(error).to_contain_text("Signing Key does not match")
    await expect(signing_key).to_be_focused()
    await expect(page.get_by_label("Store Code")).to_have_value(store.code)
    await expect(page.get_by_label("API Key (Access Token)")).to_have_value("")
    await page.screenshot(path=screenshots / "3-wrong-signing-key.png", full_page=True)
    await fill_credentials(page, store.code, token.access_token, token.signing_key)
    await page.wait_for_url(re.compile(r"/channel/return\?"))


async def test_missing_groups_are_named(
    page: Page, web_url: str, web_channel: RegisteredChannel, sandbox: SandboxServer
) -> None:
    store = sandbox.new_store()
    token = sandbox.new_token(groups=frozenset({"Product Management"}))
    await page.goto(f"{web_url}/connect/{web_channel.slug}?state=s")
    await step_store_url(page, sandbox)
    await fill_credentials(page, store.code, token.access_token, token.signing_key)
    for group in ("Order Processing & Fulfillment", "Customer Service & Sales"):
        await expect(page.get_by_text(group).first).to_be_visible()
    await expect(page.get_by_text("Groups tab").first).to_be_visible()


async def test_unsigned_token_shows_the_warning_before_continuing(
    page: Page,
    web_url: str,
    web_channel: RegisteredChannel,
    sandbox: SandboxServer,
    screenshots: Path,
) -> None:
    store, token = sandbox.new_store(), sandbox.new_token(require_signature=False)
    await page.goto(f"{web_url}/connect/{web_channel.slug}?state=s")
    await step_store_url(page, sandbox)
    await fill_credentials(page, store.code, token.access_token, token.signing_key)
    await expect(page.get_by_text("Require Signature with Key").first).to_be_visible()
    await page.screenshot(path=screenshots / "4-warning.png", full_page=True)
    await page.get_by_role("link", name=re.compile("Continue")).click()
    await page.wait_for_url(re.compile(r"/channel/return\?"))


async def test_expired_session_says_how_to_start_again(
    page: Page,
    web_url: str,
    web_channel: RegisteredChannel,
    database: Database,
    screenshots: Path,
) -> None:
    await page.goto(f"{web_url}/connect/{web_channel.slug}?state=s")
    token = page.url.rsplit("/", 1)[-1]
    await expire(database, token)
    response = await page.reload()
    assert response is not None
    assert response.status == 410
    await expect(page.get_by_role("heading", level=1)).to_contain_text("expired")
    await expect(page.get_by_text("start connecting your store again")).to_be_visible()
    await page.screenshot(path=screenshots / "6-expired.png", full_page=True)


async def test_javascript_off_still_completes(
    page_without_js: Page, web_url: str, web_channel: RegisteredChannel, sandbox: SandboxServer
) -> None:
    page = page_without_js
    store, token = sandbox.new_store(), sandbox.new_token()
    await page.goto(f"{web_url}/connect/{web_channel.slug}?state=no-js")
    await step_store_url(page, sandbox)
    await fill_credentials(page, store.code, token.access_token, token.signing_key)
    await page.wait_for_url(re.compile(r"/channel/return\?"))
    assert parse_qs(urlsplit(page.url).query)["state"] == ["no-js"]

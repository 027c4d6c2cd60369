"""Pages that are not a Miva JSON API, and the channel landing page."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("path", ["/", "/mm5/merchant.mvc", "/mm5/admin.mvc"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_storefront_and_admin_pages_are_html(
    http: httpx.Client, base_url: str, path: str, method: str
) -> None:
    response = http.request(method, base_url + path, content=b"{}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_password_protected_store(caller) -> None:
    response = caller.store_load(path="/protected/mm5/json.mvc")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.headers["content-type"].startswith("text/html")


def test_redirect_to_https(caller, base_url: str) -> None:
    response = caller.store_load(path="/old/mm5/json.mvc")

    assert response.status_code == 301
    host = base_url.removeprefix("http://")
    assert response.headers["location"] == f"https://{host}/mm5/json.mvc"


def test_html_at_the_json_mvc_path(caller) -> None:
    response = caller.store_load(path="/html/mm5/json.mvc")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_proxy_that_strips_the_auth_header(caller) -> None:
    response = caller.store_load(path="/empty/mm5/json.mvc")

    assert (response.status_code, response.content) == (200, b"")


def test_broken_store_answers_500(caller) -> None:
    assert caller.store_load(path="/broken/mm5/json.mvc").status_code == 500


def test_unknown_path_is_404(http: httpx.Client, base_url: str) -> None:
    assert http.post(base_url + "/store/json.mvc").status_code == 404


def test_channel_return_shows_escaped_query_parameters(http: httpx.Client, base_url: str) -> None:
    params = {"state": "abc-123", "status": "<script>alert(1)</script>", "merchant": 'a"b&c'}

    response = http.get(base_url + "/channel/return", params=params)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "abc-123" in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "<script>" not in response.text
    assert "a&quot;b&amp;c" in response.text


def test_channel_return_keeps_repeated_parameters(http: httpx.Client, base_url: str) -> None:
    response = http.get(base_url + "/channel/return?x=1&x=2")

    assert response.text.count("<code>x</code>") == 2

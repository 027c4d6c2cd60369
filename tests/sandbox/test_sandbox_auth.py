"""json.mvc's whole-request checks, over real HTTP, in the order Miva's server runs them."""

from __future__ import annotations

import time

import httpx
import pytest

from miva_connect.sandbox import (
    DEMO_SIGNING_KEY,
    DEMO_STORE_CODE,
    DEMO_TOKEN_DISABLED,
    DEMO_TOKEN_GOOD,
    DEMO_TOKEN_UNSIGNED_OK,
    DEMO_TOKEN_WRONG_IP,
    Sandbox,
    SandboxToken,
)

OTHER_KEY = "b3RoZXItc2lnbmluZy1rZXktMzItYnl0ZXMhISEhISE="
STORE_LOAD = {"Store_Code": DEMO_STORE_CODE, "Function": "Store_Load"}


def denied(message: str) -> dict[str, object]:
    return {"success": 0, "error_code": "access_denied", "error_message": message}


def assert_denied(response: httpx.Response, message: str) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == denied(message)


def test_signed_store_load_succeeds(caller) -> None:
    response = caller.store_load()

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    payload = response.json()
    assert payload["success"] == 1
    assert payload["data"]["code"] == "DEMO"
    assert payload["data"]["name"] == "Demo Store"


@pytest.mark.parametrize("kind", ["MIVA-HMAC-SHA256", "MIVA-HMAC-SHA1", "miva-hmac-sha256"])
def test_both_digests_and_any_case_of_the_type_are_accepted(caller, kind: str) -> None:
    assert caller.store_load(kind=kind).json()["success"] == 1


# The non-API path and the offline switch


@pytest.mark.parametrize("headers", [{}, {"X-Miva-API-Authorization": ""}])
def test_without_the_auth_header_json_mvc_answers_an_empty_body(
    http: httpx.Client, endpoint: str, headers: dict[str, str]
) -> None:
    response = http.post(endpoint, content=b'{"Function":"Store_Load"}', headers=headers)

    assert response.status_code == 200
    assert response.content == b""


def test_api_offline_answers_503(caller, sandbox: Sandbox) -> None:
    sandbox.api_offline = True

    response = caller.store_load()

    assert response.status_code == 503
    assert response.json() == {
        "success": 0,
        "error_code": "api_offline",
        "error_message": "The API is currently offline",
    }


def test_api_offline_is_checked_before_the_method(caller, sandbox: Sandbox) -> None:
    sandbox.api_offline = True

    assert caller.store_load(method="GET").status_code == 503


def test_api_offline_does_not_change_the_non_api_path(
    http: httpx.Client, endpoint: str, sandbox: Sandbox
) -> None:
    # The offline switch belongs to the API path, which needs the auth header.
    sandbox.api_offline = True

    response = http.post(endpoint, content=b"{}")

    assert (response.status_code, response.content) == (200, b"")


# Steps 1 to 3: method, content type, authorization type


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_non_post_is_an_invalid_request_method(caller, method: str) -> None:
    assert_denied(caller.store_load(method=method), "Invalid request method")


def test_method_is_checked_before_content_type_and_auth_type(caller) -> None:
    response = caller.store_load(method="GET", content_type="text/plain", authorization="X y")

    assert_denied(response, "Invalid request method")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_refused(caller, content_type: str) -> None:
    assert_denied(caller.store_load(content_type=content_type), "Invalid request content type")


def test_content_type_with_charset_is_fine(caller) -> None:
    response = caller.store_load(content_type="application/json; charset=utf-8")

    assert response.json()["success"] == 1


def test_content_type_is_checked_before_auth_type(caller) -> None:
    response = caller.store_load(content_type="text/plain", authorization="BEARER abc")

    assert_denied(response, "Invalid request content type")


@pytest.mark.parametrize("authorization", ["BEARER abc", "MIVA-HMAC-MD5 tok:sig", "token-only"])
def test_unknown_auth_type_is_unrecognized(caller, authorization: str) -> None:
    assert_denied(caller.store_load(authorization=authorization), "Unrecognized authorization type")


def test_auth_type_is_checked_before_the_token(caller) -> None:
    response = caller.store_load(authorization="BASIC not-a-token:sig")

    assert_denied(response, "Unrecognized authorization type")


def test_ssh_auth_finds_no_user(caller) -> None:
    response = caller.store_load(authorization="SSH-RSA-SHA2-256 YWRtaW4=:c2ln")

    assert_denied(response, "Access denied")


# Steps 4 and 5: token lookup, allowed IPs (indistinguishable to the caller)


@pytest.mark.parametrize(
    "authorization",
    [
        "MIVA-HMAC-SHA256 demo0000000000000000000000000099:c2ln",
        "MIVA  " + DEMO_TOKEN_GOOD,  # two spaces: the credential is empty
        "MIVA-HMAC-SHA256",
    ],
)
def test_unknown_token_is_access_denied(caller, authorization: str) -> None:
    assert_denied(caller.store_load(authorization=authorization), "Access denied")


def test_caller_ip_outside_the_allowed_list_is_access_denied(caller) -> None:
    assert_denied(caller.store_load(token=DEMO_TOKEN_WRONG_IP), "Access denied")


@pytest.mark.parametrize(
    ("allowed", "accepted"),
    [
        ("127.0.0.1", True),
        ("127.0.0.0/8", True),
        ("not-an-ip, 127.0.0.1", True),
        ("10.0.0.0/8, 192.0.2.1", False),
        ("::1, ::/0", False),  # IPv6 entries never match an IPv4 caller
        ("", False),
    ],
)
def test_allowed_ip_list(caller, sandbox: Sandbox, allowed: str, accepted: bool) -> None:
    sandbox.add_token(SandboxToken("iptoken", DEMO_SIGNING_KEY, allowed_ips=allowed))

    payload = caller.store_load(token="iptoken").json()

    assert payload == (
        {"success": 1, "data": payload.get("data")} if accepted else denied("Access denied")
    )


def test_ip_is_checked_before_disabled(caller, sandbox: Sandbox) -> None:
    sandbox.add_token(
        SandboxToken("blocked", DEMO_SIGNING_KEY, allowed_ips="192.0.2.1", disabled=True)
    )

    assert_denied(caller.store_load(token="blocked"), "Access denied")


# Steps 6 to 8: disabled, timestamp, signature


def test_disabled_token(caller) -> None:
    assert_denied(caller.store_load(token=DEMO_TOKEN_DISABLED), "Token is disabled")


def test_disabled_is_checked_before_the_timestamp(caller, sandbox: Sandbox) -> None:
    sandbox.add_token(SandboxToken("off", DEMO_SIGNING_KEY, disabled=True, require_timestamp=True))

    assert_denied(caller.store_load(token="off", timestamp=False), "Token is disabled")


@pytest.fixture
def ts_token(sandbox: Sandbox) -> str:
    sandbox.add_token(
        SandboxToken("tstoken", DEMO_SIGNING_KEY, require_timestamp=True, timestamp_window=60)
    )
    return "tstoken"


def test_required_timestamp_missing(caller, ts_token: str) -> None:
    assert_denied(caller.store_load(token=ts_token, timestamp=False), "Missing required timestamp")


@pytest.mark.parametrize("offset", [-120, 120])
def test_timestamp_outside_the_window_either_way(caller, ts_token: str, offset: int) -> None:
    body = {**STORE_LOAD, "Miva_Request_Timestamp": int(time.time()) + offset}

    assert_denied(caller.post(body, token=ts_token), "Timestamp outside configured window")


def test_timestamp_inside_the_window(caller, ts_token: str) -> None:
    body = {**STORE_LOAD, "Miva_Request_Timestamp": int(time.time()) - 30}

    assert caller.post(body, token=ts_token).json()["success"] == 1


def test_timestamp_is_ignored_unless_required(caller) -> None:
    body = {**STORE_LOAD, "Miva_Request_Timestamp": 1}

    assert caller.post(body).json()["success"] == 1


def test_timestamp_is_checked_before_the_signature(caller, ts_token: str) -> None:
    response = caller.store_load(token=ts_token, kind="MIVA", timestamp=False)

    assert_denied(response, "Missing required timestamp")


def test_unsigned_request_to_a_signing_token(caller) -> None:
    # Sic: Miva's message for "this token requires a signature".
    assert_denied(caller.store_load(kind="MIVA"), "Timestamp requires request signature")


@pytest.mark.parametrize("kind", ["MIVA-HMAC-SHA256", "MIVA-HMAC-SHA1"])
def test_wrong_signing_key(caller, kind: str) -> None:
    assert_denied(caller.store_load(key=OTHER_KEY, kind=kind), "Invalid request signature")


def test_signature_covers_the_raw_body_bytes(caller) -> None:
    signed = caller.encode(STORE_LOAD)
    sent = signed.replace(b",", b", ")  # same JSON object, other bytes
    authorization = caller.post(signed).request.headers["X-Miva-API-Authorization"]

    assert_denied(caller.post(sent, authorization=authorization), "Invalid request signature")


def test_missing_signature_part(caller) -> None:
    response = caller.store_load(authorization=f"MIVA-HMAC-SHA256 {DEMO_TOKEN_GOOD}")

    assert_denied(response, "Invalid request signature")


@pytest.mark.parametrize(
    ("kind", "key"), [("MIVA", DEMO_SIGNING_KEY), ("MIVA-HMAC-SHA256", OTHER_KEY)]
)
def test_token_without_required_signature_never_checks_it(caller, kind: str, key: str) -> None:
    assert (
        caller.store_load(token=DEMO_TOKEN_UNSIGNED_OK, kind=kind, key=key).json()["success"] == 1
    )


# Failed-login delay


@pytest.mark.parametrize("token", ["demo0000000000000000000000000099", DEMO_TOKEN_WRONG_IP])
def test_failed_token_or_ip_check_sleeps(caller, sandbox: Sandbox, token: str) -> None:
    sandbox.login_delay = 0.3

    started = time.monotonic()
    response = caller.store_load(token=token)

    assert time.monotonic() - started >= 0.3
    assert_denied(response, "Access denied")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"authorization": "BEARER abc"}, "Unrecognized authorization type"),
        ({"token": DEMO_TOKEN_DISABLED}, "Token is disabled"),
        ({"key": OTHER_KEY}, "Invalid request signature"),
    ],
)
def test_other_failures_answer_without_delay(
    caller, sandbox: Sandbox, options: dict[str, str], message: str
) -> None:
    sandbox.login_delay = 0.3

    started = time.monotonic()
    response = caller.store_load(**options)

    assert time.monotonic() - started < 0.25
    assert_denied(response, message)

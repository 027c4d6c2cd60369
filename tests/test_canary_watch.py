"""The suite-wide canary watch must itself work, or its silence proves nothing."""

from __future__ import annotations

import logging

from miva_connect.logs import REDACTED, redact
from tests import canaries
from tests.conftest import CanaryHandler


def test_watch_catches_a_secret_in_a_log_record() -> None:
    handler = CanaryHandler()
    secret = canaries.api_key()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", (secret,), None)
    handler.emit(record)
    assert handler.leaks


def test_redaction_masks_secret_fields_and_miva_headers() -> None:
    secret = canaries.api_key()
    event = redact(
        None,
        "info",
        {
            "event": f"sent X-Miva-API-Authorization: MIVA-HMAC-SHA256 {secret}:c2ln",
            "api_key": secret,
            "headers": {"authorization": secret, "accept": "json"},
            "key_id": "abcd1234",
        },
    )
    assert secret not in repr(event)
    assert event["api_key"] == REDACTED
    assert event["headers"]["accept"] == "json"
    assert event["key_id"] == "abcd1234"


def test_session_tokens_in_paths_are_masked() -> None:
    token = canaries.bearer("Abc_DEF-123456789012345678901234567890123")
    event = redact(None, "info", {"event": f"POST /v1/sessions/{token}/credentials 200"})
    assert token not in event["event"]
    assert canaries.bearer_found_in(f"/connect/sessions/{token}") == [token]

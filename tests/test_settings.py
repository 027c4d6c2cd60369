from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from miva_connect.settings import Settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_lists_are_comma_separated() -> None:
    loaded = settings(egress_ips=" 198.51.100.7, 198.51.100.8 ,", encryption_keys="a,b")
    assert loaded.egress_ips == ["198.51.100.7", "198.51.100.8"]
    assert [k.get_secret_value() for k in loaded.encryption_keys] == ["a", "b"]


def test_egress_ips_must_be_addresses_and_log_level_ignores_case() -> None:
    with pytest.raises(ValidationError, match="not an IP address"):
        settings(egress_ips="198.51.100.7,not-an-ip")
    assert settings(egress_ips="2001:db8::/32", log_level="debug").log_level == "DEBUG"


def test_plain_database_urls_get_async_drivers() -> None:
    assert settings(database_url="postgresql://u@h/d").database_url == (
        "postgresql+asyncpg://u@h/d"
    )
    assert settings(database_url="sqlite:///x.db").database_url == "sqlite+aiosqlite:///x.db"


def test_repr_hides_the_database_url_and_keys() -> None:
    text = repr(settings(database_url="postgresql://u:hunter2@h/d", encryption_keys="k3y"))
    assert "hunter2" not in text
    assert "k3y" not in text


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (
            {"allow_private_networks": True},
            "must be false in production",
        ),
        (
            {"public_url": "http://connect.example.com"},
            "must be an https:// URL in production",
        ),
    ],
)
def test_production_refuses_development_shortcuts(values: dict[str, object], problem: str) -> None:
    production = {"environment": "production", "public_url": "https://connect.example.com"}
    with pytest.raises(ValidationError, match=problem):
        settings(**{**production, **values})


async def test_production_channels_need_https_redirects() -> None:
    from miva_connect.channels.service import check_redirect_url
    from miva_connect.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="https URL"):
        check_redirect_url("http://shop.example/back", https_only=True)
    assert check_redirect_url("https://shop.example/back", https_only=True)


def test_metrics_are_off_unless_asked_and_the_token_is_a_long_secret() -> None:
    assert settings().metrics == "off"
    assert settings(metrics="on", metrics_token="").metrics_token is None
    for weak in ("short", "x" * 31, "x" * 20 + " " + "y" * 20, "é" * 40):
        with pytest.raises(ValidationError, match="at least 32 printable ASCII"):
            settings(metrics_token=weak)
    token = "t" * 32
    assert token not in repr(settings(metrics="on", metrics_token=token))


def test_production_scrapes_need_a_token() -> None:
    production = {"environment": "production", "public_url": "https://connect.example.com"}
    with pytest.raises(ValidationError, match="must be set for METRICS=on") as caught:
        settings(**production, metrics="on")
    assert [error["loc"] for error in caught.value.errors()] == [("metrics_token",)]
    assert settings(**production, metrics="on", metrics_token="t" * 32).metrics == "on"
    assert settings(**production, metrics="off").metrics_token is None


def test_production_reports_every_shortcut_at_once_even_a_default() -> None:
    with pytest.raises(ValidationError) as caught:
        # PUBLIC_URL and METRICS_TOKEN unset
        settings(environment="production", allow_private_networks=True, metrics="on")
    assert {error["loc"][0] for error in caught.value.errors()} == {
        "allow_private_networks",
        "public_url",
        "metrics_token",
    }

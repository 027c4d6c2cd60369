"""Settings from the environment (prefix `MIVA_CONNECT_`) and `.env`."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Annotated, Literal

import limits
from pydantic import AnyHttpUrl, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./miva-connect.db"
MIN_METRICS_TOKEN_LENGTH = 32


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class KeyRingSettings(BaseSettings):
    """Only the key ring: readable, and checkable, even when other settings are invalid."""

    model_config = SettingsConfigDict(
        env_prefix="MIVA_CONNECT_", env_file=".env", extra="ignore", frozen=True
    )

    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        return _split_commas(value)


class Settings(KeyRingSettings):
    """Every setting of the service; `.env.example` documents each one."""

    environment: Literal["development", "production"] = "development"
    database_url: str = Field(default=DEFAULT_DATABASE_URL, repr=False)  # may hold a password
    # Postgres connections per process: kept open, and opened beyond them under bursts.
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_max_overflow: int = Field(default=10, ge=0, le=500)
    allow_private_networks: bool = False
    # Store ports accepted besides 443 (https only); private networks allow any port.
    allowed_ports: Annotated[list[Annotated[int, Field(ge=1, le=65535)]], NoDecode] = Field(
        default_factory=list
    )
    egress_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Validated even when defaulted: production must not fall back to the http:// default.
    public_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8000"), validate_default=True
    )
    session_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    miva_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    redis_url: str | None = Field(default=None, repr=False)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limit_per_session: str = "5 per 15 minutes"
    rate_limit_per_client: str = "20 per hour"
    rate_limit_per_store_host: str = "10 per hour"
    rate_limit_sessions_per_client: str = "30 per hour"
    max_concurrent_validations: int = Field(default=20, ge=1, le=1000)
    # What opens connections to stores under the egress guard; `httpcore` is httpx's own.
    store_network: Literal["aiohttp", "httpcore"] = "aiohttp"
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    # /metrics: off (not served) or on; with a token, only for `Authorization: Bearer`.
    metrics: Literal["off", "on"] = "off"
    # Validated even when unset: production with METRICS=on needs one.
    metrics_token: SecretStr | None = Field(default=None, validate_default=True)

    @field_validator(
        "egress_ips",
        "allowed_ports",
        "trusted_proxies",
        "allowed_hosts",
        "cors_allowed_origins",
        mode="before",
    )
    @classmethod
    def _split(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("egress_ips", "trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR range") from None
        return value

    @field_validator(
        "rate_limit_per_session",
        "rate_limit_per_client",
        "rate_limit_per_store_host",
        "rate_limit_sessions_per_client",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate such as '20 per hour'") from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("metrics_token")
    @classmethod
    def _bearer_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # /metrics shares the public port and skips the host check (scrapers use IPs).
        production = info.data.get("environment") == "production"
        if value is None and production and info.data.get("metrics") == "on":
            raise ValueError("must be set for METRICS=on in production")
        token = "" if value is None else value.get_secret_value()
        if value is not None and (
            len(token) < MIN_METRICS_TOKEN_LENGTH or not all("!" <= char <= "~" for char in token)
        ):
            raise ValueError(
                f"must be at least {MIN_METRICS_TOKEN_LENGTH} printable ASCII characters "
                "without spaces (e.g. `openssl rand -hex 32`)"
            )
        return value

    # Field validators rather than one model validator, so that every problem is reported
    # at once, each under its own variable. `environment` is declared first, so it is in
    # `info.data` (unless it is itself invalid).
    @field_validator("allow_private_networks")
    @classmethod
    def _no_private_networks_in_production(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("environment") == "production":
            raise ValueError("must be false in production")
        return value

    @field_validator("public_url")
    @classmethod
    def _https_in_production(cls, value: AnyHttpUrl, info: ValidationInfo) -> AnyHttpUrl:
        if info.data.get("environment") == "production" and value.scheme != "https":
            raise ValueError("must be an https:// URL in production")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Accept plain `postgresql://` and `sqlite://` URLs; use the async drivers."""
        for plain, driver in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if value.startswith(plain):
                return driver + value.removeprefix(plain)
        return value

    @property
    def public_base_url(self) -> str:
        return str(self.public_url).rstrip("/")


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()

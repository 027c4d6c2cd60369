"""State of a sandbox store: tokens, stores, switches, and the requests it received."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

GROUP_PRODUCTS = "Product Management"
GROUP_ORDERS = "Order Processing & Fulfillment"
GROUP_CUSTOMERS = "Customer Service & Sales"
ALL_GROUPS: frozenset[str] = frozenset({GROUP_PRODUCTS, GROUP_ORDERS, GROUP_CUSTOMERS})


@dataclass(frozen=True)
class SandboxToken:
    """One API token as configured in the Miva admin (secrets are kept out of `repr`)."""

    access_token: str = field(repr=False)
    # Base64, exactly as the Miva admin shows it.
    signing_key: str = field(default="", repr=False)
    groups: frozenset[str] = ALL_GROUPS
    # Miva's "Allowed IP Address(es)": comma-separated IPs and CIDR ranges.
    allowed_ips: str = "0.0.0.0/0"
    require_signature: bool = True
    require_timestamp: bool = False
    timestamp_window: int = 60
    disabled: bool = False
    # Explicitly assigned functions ("Function" or "STORE_CODE:Function"); they override
    # the privilege check.
    functions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SandboxStore:
    """One store of the sandbox domain, with the fields `Store_Load` returns."""

    code: str
    name: str
    owner: str = "Sandbox Owner"
    email: str = "owner@example.com"
    company: str = "Sandbox Company"
    address: str = "1 Example Street"
    city: str = "Springfield"
    state: str = "CA"
    zip: str = "90210"
    phone: str = "555-0100"
    country: str = "US"
    currency_id: int = 1
    charset: str = "utf-8"
    # How many fake rows each list function returns for this store.
    record_count: int = 3
    id: int = 1


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sandbox received; headers and body stay out of `repr` (secrets)."""

    method: str
    path: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    client_ip: str


@dataclass
class Sandbox:
    """The mutable state of one running sandbox (one Miva domain)."""

    # Keyed by upper-cased store code: Miva looks store codes up case-insensitively.
    stores: dict[str, SandboxStore] = field(default_factory=dict)
    tokens: dict[str, SandboxToken] = field(default_factory=dict, repr=False)
    api_offline: bool = False
    # Seconds slept on a failed token or IP check, like Miva's FailedLoginDelay.
    login_delay: float = 0.0
    # Seconds added to every json.mvc reply: the network and server time of a real store.
    latency: float = 0.0
    # Stand-in for Miva's per-request time budget: more operations answer HTTP 206.
    max_operations_per_request: int | None = None
    # Tests inspect what was sent; a long-running demo keeps nothing.
    record_requests: bool = True
    requests: list[RecordedRequest] = field(default_factory=list, repr=False)

    def add_token(self, token: SandboxToken) -> SandboxToken:
        """Register (or replace) a token."""
        self.tokens[token.access_token] = token
        return token

    def add_store(self, store: SandboxStore) -> SandboxStore:
        """Register (or replace) a store under its upper-cased code."""
        self.stores[store.code.upper()] = store
        return store

    def find_store(self, code: str) -> SandboxStore | None:
        """The store with this code, compared case-insensitively."""
        return self.stores.get(code.upper())


# Demo data: obviously fake, deterministic values the CLI prints for manual testing.
DEMO_STORE_CODE = "DEMO"
DEMO_STORE_NAME = "Demo Store"
DEMO_SIGNING_KEY = base64.b64encode(b"miva-connect-demo-signing-key-32").decode("ascii")


def _demo_token(number: int) -> str:
    """A 32-character demo access token: "demo0000000000000000000000000001" and so on."""
    return f"demo{number:028d}"


DEMO_TOKEN_GOOD = _demo_token(1)
DEMO_TOKEN_PRODUCTS_ONLY = _demo_token(2)
DEMO_TOKEN_UNSIGNED_OK = _demo_token(3)
DEMO_TOKEN_DISABLED = _demo_token(4)
DEMO_TOKEN_WRONG_IP = _demo_token(5)
DEMO_BLOCKED_IP_ALLOWLIST = "203.0.113.7"

# What each demo token demonstrates, for the CLI to print next to it.
DEMO_TOKENS: Mapping[str, str] = {
    DEMO_TOKEN_GOOD: "all role groups, requires a signature",
    DEMO_TOKEN_PRODUCTS_ONLY: "only the Product Management group",
    DEMO_TOKEN_UNSIGNED_OK: "accepts unsigned requests (any signing key passes)",
    DEMO_TOKEN_DISABLED: "disabled",
    DEMO_TOKEN_WRONG_IP: f"only allows {DEMO_BLOCKED_IP_ALLOWLIST} (refuses loopback)",
}


def demo_sandbox() -> Sandbox:
    """A sandbox with the demo store and one demo token per interesting case."""
    sandbox = Sandbox(record_requests=False)
    sandbox.add_store(SandboxStore(code=DEMO_STORE_CODE, name=DEMO_STORE_NAME))
    key = DEMO_SIGNING_KEY
    for token in (
        SandboxToken(DEMO_TOKEN_GOOD, key),
        SandboxToken(DEMO_TOKEN_PRODUCTS_ONLY, key, groups=frozenset({GROUP_PRODUCTS})),
        SandboxToken(DEMO_TOKEN_UNSIGNED_OK, key, require_signature=False),
        SandboxToken(DEMO_TOKEN_DISABLED, key, disabled=True),
        SandboxToken(DEMO_TOKEN_WRONG_IP, key, allowed_ips=DEMO_BLOCKED_IP_ALLOWLIST),
    ):
        sandbox.add_token(token)
    return sandbox

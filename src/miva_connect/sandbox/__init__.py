"""A local emulation of a Miva store's JSON API (json.mvc), for demos and tests.

It follows the server behaviour described in the shared Miva JSON API reference
(the check order of `JSON_API`), not our client, because it is what the client is
tested against.
"""

from miva_connect.sandbox.app import create_sandbox_app
from miva_connect.sandbox.auth import ip_allowed
from miva_connect.sandbox.config import (
    ALL_GROUPS,
    DEMO_BLOCKED_IP_ALLOWLIST,
    DEMO_SIGNING_KEY,
    DEMO_STORE_CODE,
    DEMO_STORE_NAME,
    DEMO_TOKEN_DISABLED,
    DEMO_TOKEN_GOOD,
    DEMO_TOKEN_PRODUCTS_ONLY,
    DEMO_TOKEN_UNSIGNED_OK,
    DEMO_TOKEN_WRONG_IP,
    DEMO_TOKENS,
    GROUP_CUSTOMERS,
    GROUP_ORDERS,
    GROUP_PRODUCTS,
    RecordedRequest,
    Sandbox,
    SandboxStore,
    SandboxToken,
    demo_sandbox,
)
from miva_connect.sandbox.functions import GROUP_PRIVILEGES, LIST_FUNCTIONS
from miva_connect.sandbox.server import run_sandbox, serve_in_thread

__all__ = [
    "ALL_GROUPS",
    "DEMO_BLOCKED_IP_ALLOWLIST",
    "DEMO_SIGNING_KEY",
    "DEMO_STORE_CODE",
    "DEMO_STORE_NAME",
    "DEMO_TOKENS",
    "DEMO_TOKEN_DISABLED",
    "DEMO_TOKEN_GOOD",
    "DEMO_TOKEN_PRODUCTS_ONLY",
    "DEMO_TOKEN_UNSIGNED_OK",
    "DEMO_TOKEN_WRONG_IP",
    "GROUP_CUSTOMERS",
    "GROUP_ORDERS",
    "GROUP_PRIVILEGES",
    "GROUP_PRODUCTS",
    "LIST_FUNCTIONS",
    "RecordedRequest",
    "Sandbox",
    "SandboxStore",
    "SandboxToken",
    "create_sandbox_app",
    "demo_sandbox",
    "ip_allowed",
    "run_sandbox",
    "serve_in_thread",
]

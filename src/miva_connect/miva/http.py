"""The HTTP client for calling stores: explicit timeouts, no redirects, nothing from the
environment (no proxy variables, no certificate overrides), and every connection through
the egress guard (`miva_connect.egress`): resolved once, checked, pinned."""

from __future__ import annotations

import httpx

from miva_connect.egress import AddressPolicy, GuardedTransport, Resolver
from miva_connect.miva.errors import Redirected

CONNECT_TIMEOUT = 5.0
POOL_TIMEOUT = 5.0


async def _stop_at_redirects(response: httpx.Response) -> None:
    # httpx parses a redirect's Location even when it will not follow it, and fails on
    # odd ones ("javascript:..."); answer before that, the same way for every Location.
    if response.is_redirect or 300 <= response.status_code < 400:
        raise Redirected(response.status_code, response.headers.get("Location"))


def store_http_client(
    *,
    timeout: float,
    policy: AddressPolicy,
    resolver: Resolver | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 200,
) -> httpx.AsyncClient:
    """One shared client for every store; `timeout` bounds each read and write.

    `transport` (tests only) replaces the network under the guard, never the guard.
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=50)
    inner = transport or httpx.AsyncHTTPTransport(retries=0, trust_env=False, limits=limits)
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver=resolver, inner=inner),
        timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT, pool=POOL_TIMEOUT),
        follow_redirects=False,
        trust_env=False,
        event_hooks={"response": [_stop_at_redirects]},
    )

"""One credential check against a store: identity, role groups, signature enforcement."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from miva_connect.miva.client import MivaClient, Payload, is_success
from miva_connect.miva.errors import (
    ApiError,
    InvalidResponse,
    MivaError,
    SignatureRequired,
    StoreNotFound,
    api_error_from,
)

# Which read-only list function proves each role group. Miva publishes no mapping from
# its default groups to privileges; these follow the groups' descriptions (a hypothesis,
# see docs: each probe is `Count: 1`, because Count 0 means "every row").
ROLE_GROUP_PROBES: Mapping[str, tuple[str, ...]] = {
    "Product Management": ("ProductList_Load_Query", "CategoryList_Load_Query"),
    "Order Processing & Fulfillment": ("OrderList_Load_Query",),
    "Customer Service & Sales": ("CustomerList_Load_Query",),
}


@dataclass(frozen=True)
class Verification:
    """What the store said about a set of credentials that it accepted."""

    store_code: str
    store_name: str
    granted_groups: tuple[str, ...]
    missing_groups: tuple[str, ...]
    # True: the token refuses unsigned requests; False: it accepts them (so a signing key,
    # if given, could not be proven); None: the unsigned check's answer was unclear.
    signature_enforced: bool | None


async def verify_credentials(
    client: MivaClient, probes: Mapping[str, tuple[str, ...]] = ROLE_GROUP_PROBES
) -> Verification:
    """Check the client's credentials in one multicall (plus one concurrent unsigned call).

    Raises a `MivaError` when the store refuses the request as a whole, or when
    `Store_Load` fails. Missing role groups are reported, not raised.
    """
    unsigned = asyncio.create_task(_accepts_unsigned(client)) if client.auth.signed else None
    try:
        store_code, store_name, denied = await _signed_check(client, probes)
        # Without a key the main check itself was unsigned, and the store took it.
        accepts_unsigned = await _settle(unsigned) if unsigned else True
    finally:
        if unsigned:
            # Wait for the cancelled check, so it never outlives this call (or the caller's
            # httpx client), and collect its outcome so no exception goes unretrieved.
            unsigned.cancel()
            await asyncio.gather(unsigned, return_exceptions=True)
    return Verification(
        store_code=store_code,
        store_name=store_name,
        granted_groups=tuple(g for g, fs in probes.items() if not denied.intersection(fs)),
        missing_groups=tuple(g for g, fs in probes.items() if denied.intersection(fs)),
        signature_enforced=None if accepts_unsigned is None else not accepts_unsigned,
    )


async def _signed_check(
    client: MivaClient, probes: Mapping[str, tuple[str, ...]]
) -> tuple[str, str, set[str]]:
    """`Store_Load` plus one `Count: 1` list probe per function; return identity and denials."""
    functions = [f for group in probes.values() for f in group]
    results = await client.multicall(
        [{"Function": "Store_Load"}] + [{"Function": f, "Count": 1, "Offset": 0} for f in functions]
    )
    if len(results) != len(functions) + 1:
        raise InvalidResponse("multicall reply has fewer results than operations")
    store, *probed = results
    if not is_success(store):
        raise _store_error(store)
    denied: set[str] = set()
    for function, result in zip(functions, probed, strict=True):
        if is_success(result):
            continue
        # A missing privilege is a per-operation `access_denied`; anything else is a fault.
        if result.get("error_code") != "access_denied":
            raise api_error_from(result)
        denied.add(function)
    data = store.get("data")
    identity = data if isinstance(data, dict) else {}
    code = _text(identity.get("code"), MAX_CODE_LENGTH) or client.store_code
    return code, _text(identity.get("name"), MAX_NAME_LENGTH), denied


def _text(value: object, limit: int) -> str:
    """A store-supplied string made safe to store and show: printable, bounded."""
    if not isinstance(value, str):
        return ""
    return "".join(c for c in value if c.isprintable())[:limit].strip()


async def _settle(unsigned: asyncio.Task[bool | None]) -> bool | None:
    """The unsigned check's answer, but a store that accepted the credentials is not kept
    waiting on it: after the grace period the answer is "unclear"."""
    try:
        return await asyncio.wait_for(asyncio.shield(unsigned), UNSIGNED_GRACE_SECONDS)
    except TimeoutError:
        return None


async def _accepts_unsigned(client: MivaClient) -> bool | None:
    """Whether the token accepts a `MIVA <token>` request; None if the answer was unclear."""
    try:
        await client.with_auth(client.auth.unsigned()).call("Store_Load")
    except SignatureRequired:
        return False
    except MivaError:
        return None
    return True


UNSIGNED_GRACE_SECONDS = 2.0
MAX_NAME_LENGTH = 200
MAX_CODE_LENGTH = 64

# Failures of `Store_Load` that are not about the store code (our request was wrong).
_NOT_STORE_CODE_ERRORS = frozenset({"MER-JSN-00017", "MER-JSN-00024", "invalid_function"})


def _store_error(result: Payload) -> MivaError:
    """A failed `Store_Load` inside the multicall: the request passed authentication, so an
    `access_denied` here means the token may not open this store, not a bad token."""
    error = api_error_from(result)
    if error.code in _NOT_STORE_CODE_ERRORS:
        return ApiError(error.code, error.miva_message)
    return StoreNotFound(error.code, error.miva_message)

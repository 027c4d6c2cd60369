"""The JSON API functions the sandbox implements, with Miva's per-function checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from miva_connect.sandbox import rows
from miva_connect.sandbox.config import (
    GROUP_CUSTOMERS,
    GROUP_ORDERS,
    GROUP_PRODUCTS,
    Sandbox,
    SandboxStore,
    SandboxToken,
)

Payload = dict[str, Any]
Lookup = Callable[[str], object]

# Privilege areas each default role group grants (view at least). Miva publishes no
# such mapping; this follows the groups' descriptions to merchants and is a HYPOTHESIS
# to verify against a real store.
GROUP_PRIVILEGES: Mapping[str, frozenset[str]] = {
    GROUP_PRODUCTS: frozenset({"PROD", "CTGY"}),
    GROUP_ORDERS: frozenset({"ORDR"}),
    GROUP_CUSTOMERS: frozenset({"CUST"}),
}


@dataclass(frozen=True)
class ListFunction:
    """A store-scoped `*List_Load_Query` function: the area `CanI` checks, and its rows."""

    area: str
    row: Callable[[SandboxStore, int], Payload]


LIST_FUNCTIONS: Mapping[str, ListFunction] = {
    "ProductList_Load_Query": ListFunction("PROD", rows.product),
    "CategoryList_Load_Query": ListFunction("CTGY", rows.category),
    "OrderList_Load_Query": ListFunction("ORDR", rows.order),
    "OrderShipmentList_Load_Query": ListFunction("ORDR", rows.shipment),
    "CustomerList_Load_Query": ListFunction("CUST", rows.customer),
    "AllOrderPaymentList_Load_Query": ListFunction("ORDR", rows.payment),
}


def error(code: str, message: str) -> Payload:
    """Miva's plain error shape."""
    return {"success": 0, "error_code": code, "error_message": message}


def run_function(sandbox: Sandbox, token: SandboxToken, lookup: Lookup) -> Payload:
    """Miva's `JSON_API_Function`: open the store if a code is given, then dispatch."""
    store: SandboxStore | None = None
    code = lookup("Store_Code")
    if code is not None:
        store = sandbox.find_store(str(code))
        if store is None:
            return error("MER-DBE-OPN-00002", f"Unable to open store '{code}'")
    function = lookup("Function")
    if function is None or function == "":
        return error("MER-JSN-00024", "Missing required parameter Function")
    name = str(function)
    if name == "StoreList_Load_Query":
        stores = list(sandbox.stores.values())
        return _list_reply(len(stores), lookup, lambda index: rows.store(stores[index], index))
    if name != "Store_Load" and name not in LIST_FUNCTIONS:
        return error("invalid_function", "Invalid function")
    if store is None:
        return error("MER-JSN-00017", "Missing required parameter Store_Code")
    if name == "Store_Load":
        # Store_Load checks no privilege beyond opening the store.
        return {"success": 1, "data": rows.store(store, 0)}
    spec = LIST_FUNCTIONS[name]
    if not may_call(token, store, name, spec.area):
        return error("access_denied", "Access denied")
    return _list_reply(store.record_count, lookup, lambda index: spec.row(store, index))


def may_call(token: SandboxToken, store: SandboxStore, function: str, area: str) -> bool:
    """An assigned function overrides the privilege check; otherwise the groups decide."""
    assigned = {f.upper() for f in token.functions}
    if function.upper() in assigned or f"{store.code}:{function}".upper() in assigned:
        return True
    return any(area in GROUP_PRIVILEGES.get(group, frozenset()) for group in token.groups)


def _list_reply(total: int, lookup: Lookup, row: Callable[[int], Payload]) -> Payload:
    """The list query shape, paged by `Count` and `Offset` over rows 0 to total - 1."""
    count, offset = _whole(lookup, "Count"), _whole(lookup, "Offset")
    if count is None or offset is None:
        return _input_errors([n for n, v in (("Count", count), ("Offset", offset)) if v is None])
    # Count 0 (the default) means every row.
    end = min(total, offset + count) if count else total
    data = [row(index) for index in range(offset, end)]
    return {"success": 1, "data": {"total_count": total, "start_offset": offset, "data": data}}


def _whole(lookup: Lookup, name: str) -> int | None:
    """A non-negative integer parameter (absent or null is 0); None when invalid."""
    value = lookup(name)
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        return None
    text = str(value)
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    return int(text) if text.isascii() and text.isdigit() else None


def _input_errors(fields: list[str]) -> Payload:
    message = "Please specify a non-negative whole number"
    return {
        **error("MER-JSN-00023", "One or more parameters are invalid"),
        "validation_error": True,
        "error_field": fields[0],
        "error_field_message": message,
        "input_errors": True,
        "error_fields": [{"error_field": f, "error_message": message} for f in fields],
    }

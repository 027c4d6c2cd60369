"""Function-level behaviour: store opening, dispatch, privileges, list queries."""

from __future__ import annotations

from typing import Any

import pytest

from miva_connect.sandbox import (
    ALL_GROUPS,
    DEMO_SIGNING_KEY,
    DEMO_TOKEN_PRODUCTS_ONLY,
    GROUP_CUSTOMERS,
    GROUP_ORDERS,
    GROUP_PRODUCTS,
    LIST_FUNCTIONS,
    Sandbox,
    SandboxStore,
    SandboxToken,
)

ACCESS_DENIED = {"success": 0, "error_code": "access_denied", "error_message": "Access denied"}
# The sandbox's (hypothetical) mapping, restated independently.
AREA_GROUP = {
    "PROD": GROUP_PRODUCTS,
    "CTGY": GROUP_PRODUCTS,
    "ORDR": GROUP_ORDERS,
    "CUST": GROUP_CUSTOMERS,
}


def test_store_load_returns_the_store_fields(caller) -> None:
    data = caller.store_load().json()["data"]

    assert data["id"] == 1
    assert (data["code"], data["name"]) == ("DEMO", "Demo Store")
    for name in ("owner", "email", "company", "city", "country", "currncy_id", "charset"):
        assert name in data


@pytest.mark.parametrize("code", ["demo", "Demo", "DEMO"])
def test_store_code_is_case_insensitive(caller, code: str) -> None:
    payload = caller.post({"Store_Code": code, "Function": "Store_Load"}).json()

    assert payload["success"] == 1
    assert payload["data"]["code"] == "DEMO"


def test_unknown_store_code(caller) -> None:
    payload = caller.post({"Store_Code": "NOPE", "Function": "Store_Load"}).json()

    assert payload == {
        "success": 0,
        "error_code": "MER-DBE-OPN-00002",
        "error_message": "Unable to open store 'NOPE'",
    }


def test_store_is_opened_before_the_function_is_read(caller) -> None:
    payload = caller.post({"Store_Code": "NOPE"}).json()

    assert payload["error_code"] == "MER-DBE-OPN-00002"


def test_missing_function(caller) -> None:
    payload = caller.post({"Store_Code": "DEMO"}).json()

    assert payload == {
        "success": 0,
        "error_code": "MER-JSN-00024",
        "error_message": "Missing required parameter Function",
    }


@pytest.mark.parametrize("function", ["Store_Load", "ProductList_Load_Query"])
def test_missing_store_code(caller, function: str) -> None:
    payload = caller.post({"Function": function}).json()

    assert payload == {
        "success": 0,
        "error_code": "MER-JSN-00017",
        "error_message": "Missing required parameter Store_Code",
    }


def test_store_code_in_the_query_string_is_ignored(caller) -> None:
    response = caller.post({"Function": "Store_Load"}, path="/mm5/json.mvc?Store_Code=DEMO")

    assert response.json()["error_code"] == "MER-JSN-00017"


def test_unknown_function(caller) -> None:
    payload = caller.post({"Store_Code": "DEMO", "Function": "Product_Explode"}).json()

    assert payload == {
        "success": 0,
        "error_code": "invalid_function",
        "error_message": "Invalid function",
    }


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
def test_body_that_is_not_a_json_object(caller, body: bytes) -> None:
    payload = caller.post(body).json()

    assert payload["success"] == 0
    assert payload["error_code"] == "MER-JSN-00047"


def test_also_served_under_merchant2(caller) -> None:
    assert caller.store_load(path="/Merchant2/json.mvc").json()["success"] == 1


def test_store_list_needs_no_store_code(caller, sandbox: Sandbox) -> None:
    sandbox.add_store(SandboxStore(code="second", name="Second Store", id=2))

    data = caller.post({"Function": "StoreList_Load_Query"}).json()["data"]

    assert data["total_count"] == 2
    assert [row["code"] for row in data["data"]] == ["DEMO", "second"]


# Privileges


@pytest.mark.parametrize("function", sorted(LIST_FUNCTIONS))
def test_list_functions_with_all_groups(caller, function: str) -> None:
    payload = caller.post({"Store_Code": "DEMO", "Function": function, "Count": 1}).json()

    assert payload["success"] == 1
    assert payload["data"]["total_count"] == 3
    assert len(payload["data"]["data"]) == 1


@pytest.mark.parametrize("group", sorted(ALL_GROUPS))
@pytest.mark.parametrize("function", sorted(LIST_FUNCTIONS))
def test_each_group_grants_only_its_areas(
    caller, sandbox: Sandbox, group: str, function: str
) -> None:
    sandbox.add_token(SandboxToken("grouptoken", DEMO_SIGNING_KEY, groups=frozenset({group})))
    expected = AREA_GROUP[LIST_FUNCTIONS[function].area] == group

    payload = caller.post(
        {"Store_Code": "DEMO", "Function": function, "Count": 1}, token="grouptoken"
    ).json()

    assert payload["success"] == (1 if expected else 0)
    if not expected:
        assert payload == ACCESS_DENIED


def test_store_load_needs_no_group(caller, sandbox: Sandbox) -> None:
    sandbox.add_token(SandboxToken("nogroups", DEMO_SIGNING_KEY, groups=frozenset()))

    assert caller.store_load(token="nogroups").json()["success"] == 1


def test_demo_products_only_token(caller) -> None:
    def call(function: str) -> Any:
        body = {"Store_Code": "DEMO", "Function": function, "Count": 1}
        return caller.post(body, token=DEMO_TOKEN_PRODUCTS_ONLY).json()

    assert call("ProductList_Load_Query")["success"] == 1
    assert call("OrderList_Load_Query") == ACCESS_DENIED


@pytest.mark.parametrize("assigned", ["OrderList_Load_Query", "demo:OrderList_Load_Query"])
def test_assigned_function_overrides_the_privilege_check(
    caller, sandbox: Sandbox, assigned: str
) -> None:
    sandbox.add_token(
        SandboxToken(
            "assigned", DEMO_SIGNING_KEY, groups=frozenset(), functions=frozenset({assigned})
        )
    )

    def call(function: str) -> Any:
        return caller.post({"Store_Code": "DEMO", "Function": function}, token="assigned").json()

    assert call("OrderList_Load_Query")["success"] == 1
    assert call("CustomerList_Load_Query") == ACCESS_DENIED


def test_function_assigned_for_another_store_does_not_count(caller, sandbox: Sandbox) -> None:
    functions = frozenset({"OTHER:OrderList_Load_Query"})
    sandbox.add_token(
        SandboxToken("elsewhere", DEMO_SIGNING_KEY, groups=frozenset(), functions=functions)
    )

    payload = caller.post(
        {"Store_Code": "DEMO", "Function": "OrderList_Load_Query"}, token="elsewhere"
    )

    assert payload.json() == ACCESS_DENIED


# Count and Offset


@pytest.mark.parametrize(
    ("count", "offset", "ids"),
    [(0, 0, [1, 2, 3, 4, 5]), (2, 0, [1, 2]), (2, 3, [4, 5]), (10, 4, [5]), (1, 9, [])],
)
def test_count_and_offset(
    caller, sandbox: Sandbox, count: int, offset: int, ids: list[int]
) -> None:
    sandbox.add_store(SandboxStore(code="DEMO", name="Demo Store", record_count=5))
    body = {
        "Store_Code": "DEMO",
        "Function": "ProductList_Load_Query",
        "Count": count,
        "Offset": offset,
    }

    data = caller.post(body).json()["data"]

    assert data["total_count"] == 5
    assert data["start_offset"] == offset
    assert [row["id"] for row in data["data"]] == ids


def test_sdk_style_nulls_and_filters_are_tolerated(caller) -> None:
    body = {
        "Store_Code": "DEMO",
        "Function": "CustomerList_Load_Query",
        "Count": 1,
        "Offset": 0,
        "Sort": None,
        "Filter": [{"name": "search", "value": []}],
    }

    assert caller.post(body).json()["success"] == 1


def test_empty_store_still_succeeds(caller, sandbox: Sandbox) -> None:
    sandbox.add_store(SandboxStore(code="DEMO", name="Demo Store", record_count=0))

    data = caller.post({"Store_Code": "DEMO", "Function": "OrderList_Load_Query"}).json()["data"]

    assert (data["total_count"], data["data"]) == (0, [])


@pytest.mark.parametrize("count", [-1, "many", True, 1.5])
def test_invalid_count(caller, count: object) -> None:
    body = {"Store_Code": "DEMO", "Function": "ProductList_Load_Query", "Count": count}

    payload = caller.post(body).json()

    assert payload["error_code"] == "MER-JSN-00023"
    assert payload["error_field"] == "Count"
    assert payload["error_fields"][0]["error_field"] == "Count"

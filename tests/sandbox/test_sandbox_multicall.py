"""Multicall: operations, iterations, parameter lookup order, 206 continuation, Range."""

from __future__ import annotations

import pytest

from miva_connect.sandbox import DEMO_SIGNING_KEY, DEMO_TOKEN_PRODUCTS_ONLY, Sandbox, SandboxToken

ACCESS_DENIED = {"success": 0, "error_code": "access_denied", "error_message": "Access denied"}


def operations(count: int) -> dict[str, object]:
    """`count` Product list calls whose Offset tells the results apart."""
    ops = [{"Function": "ProductList_Load_Query", "Count": 1, "Offset": i} for i in range(count)]
    return {"Store_Code": "DEMO", "Operations": ops}


def offsets(results: list[dict[str, object]]) -> list[object]:
    return [result["data"]["start_offset"] for result in results]  # type: ignore[index]


def test_results_come_back_as_an_array_in_order(caller) -> None:
    body = {
        "Store_Code": "DEMO",
        "Operations": [
            {"Function": "Store_Load"},
            {"Function": "OrderList_Load_Query", "Count": 1},
            {"Function": "Nope"},
        ],
    }

    results = caller.post(body).json()

    assert [r["success"] for r in results] == [1, 1, 0]
    assert results[0]["data"]["code"] == "DEMO"
    assert results[2]["error_code"] == "invalid_function"


def test_privilege_failures_are_per_operation(caller) -> None:
    body = {
        "Store_Code": "DEMO",
        "Operations": [
            {"Function": "ProductList_Load_Query"},
            {"Function": "OrderList_Load_Query"},
        ],
    }

    results = caller.post(body, token=DEMO_TOKEN_PRODUCTS_ONLY).json()

    assert results[0]["success"] == 1
    assert results[1] == ACCESS_DENIED


def test_auth_failure_replaces_the_whole_reply(caller) -> None:
    payload = caller.post(operations(3), kind="MIVA").json()

    assert payload == {
        "success": 0,
        "error_code": "access_denied",
        "error_message": "Timestamp requires request signature",
    }


def test_iterations_yield_a_nested_array(caller) -> None:
    body = {
        "Store_Code": "DEMO",
        "Operations": [
            {
                "Function": "ProductList_Load_Query",
                "Count": 1,
                "Iterations": [{"Offset": 0}, {"Offset": 2}, {"Count": 2, "Offset": 1}],
            },
            {"Function": "Store_Load"},
        ],
    }

    results = caller.post(body).json()

    assert len(results) == 2
    assert [len(r["data"]["data"]) for r in results[0]] == [1, 1, 2]
    assert offsets(results[0]) == [0, 2, 1]
    assert results[1]["data"]["code"] == "DEMO"


def test_lookup_order_is_iteration_then_operation_then_top_level(caller) -> None:
    body = {
        "Store_Code": "NOPE",
        "Operations": [
            {"Function": "Store_Load", "Store_Code": "demo"},
            {
                "Function": "Store_Load",
                "Store_Code": "NOPE",
                "Iterations": [{"Store_Code": "DEMO"}],
            },
            {"Function": "Store_Load"},
        ],
    }

    first, second, third = caller.post(body).json()

    assert first["success"] == 1
    assert second[0]["success"] == 1
    assert third["error_message"] == "Unable to open store 'NOPE'"


def test_empty_operations(caller) -> None:
    assert caller.post({"Operations": []}).json() == []


def test_operations_that_are_not_an_array_make_a_single_call(caller) -> None:
    payload = caller.post({"Store_Code": "DEMO", "Operations": {"Function": "Store_Load"}}).json()

    assert payload["error_code"] == "MER-JSN-00024"


# HTTP 206 and Range continuation


def test_too_many_operations_answer_206_with_the_completed_ones(caller, sandbox: Sandbox) -> None:
    sandbox.max_operations_per_request = 2

    response = caller.post(operations(5))

    assert response.status_code == 206
    assert response.headers["content-range"] == "2/5"
    assert offsets(response.json()) == [0, 1]


def test_range_continues_with_the_identical_body(caller, sandbox: Sandbox) -> None:
    sandbox.max_operations_per_request = 2
    body = caller.encode(operations(5))

    second = caller.post(body, headers={"Range": "Operations=3-5"})
    third = caller.post(body, headers={"Range": "Operations=5-5"})

    assert second.status_code == 206
    # Like Miva: the count is of this reply's operations, not a position.
    assert second.headers["content-range"] == "2/5"
    assert offsets(second.json()) == [2, 3]
    assert third.status_code == 200
    assert "content-range" not in third.headers
    assert offsets(third.json()) == [4]


def test_limit_reached_on_the_last_operation_is_not_partial(caller, sandbox: Sandbox) -> None:
    sandbox.max_operations_per_request = 3

    response = caller.post(operations(3))

    assert response.status_code == 200
    assert offsets(response.json()) == [0, 1, 2]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Operations=2-3", [1, 2]),
        ("operations=4-", [3, 4]),
        ("Operations=-2", [0, 1]),
        ("", [0, 1, 2, 3, 4]),
    ],
)
def test_range_bounds(caller, header: str, expected: list[int]) -> None:
    response = caller.post(operations(5), headers={"Range": header})

    assert response.status_code == 200
    assert offsets(response.json()) == expected


@pytest.mark.parametrize(
    ("header", "code", "message"),
    [
        ("Operations=1-2,4-5", "MER-JSN-00031", "Multiple ranges are not supported"),
        ("Operations=1-2-3", "MER-JSN-00032", "Range Not Satisfiable"),
        ("Operations=0-2", "MER-JSN-00033", "Range Not Satisfiable"),
        ("Operations=6-", "MER-JSN-00033", "Range Not Satisfiable"),
        ("Operations=x-2", "MER-JSN-00033", "Range Not Satisfiable"),
        ("Operations=3-2", "MER-JSN-00034", "Range Not Satisfiable"),
        ("Operations=1-6", "MER-JSN-00034", "Range Not Satisfiable"),
    ],
)
def test_unsatisfiable_ranges_answer_416(caller, header: str, code: str, message: str) -> None:
    response = caller.post(operations(5), headers={"Range": header})

    assert response.status_code == 416
    assert response.headers["content-range"] == "*/5"
    assert response.json() == {"success": 0, "error_code": code, "error_message": message}


def test_unknown_range_unit_is_a_plain_error(caller) -> None:
    response = caller.post(operations(5), headers={"Range": "bytes=0-10"})

    assert response.status_code == 200
    assert "content-range" not in response.headers
    assert response.json() == {
        "success": 0,
        "error_code": "MER-JSN-00028",
        "error_message": "Unknown Unit Type",
    }


def test_range_is_ignored_for_a_single_call(caller) -> None:
    response = caller.store_load(headers={"Range": "Operations=9-9"})

    assert (response.status_code, response.json()["success"]) == (200, 1)


def test_timestamp_is_read_from_the_top_level_only(caller, sandbox: Sandbox) -> None:
    sandbox.add_token(SandboxToken("ts", DEMO_SIGNING_KEY, require_timestamp=True))
    body = {
        "Store_Code": "DEMO",
        "Operations": [{"Function": "Store_Load", "Miva_Request_Timestamp": 1}],
    }

    payload = caller.post(body, token="ts", timestamp=False).json()

    assert payload["error_message"] == "Missing required timestamp"

"""Running an authenticated request body: one call, or a multicall with `Range`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from miva_connect.sandbox.config import Sandbox, SandboxToken
from miva_connect.sandbox.functions import Payload, error, run_function

# Unparsable bodies: the real engine's answer is not published. The LSK file header says
# "Next Error Code: 47", so this code cannot be mistaken for one Miva already uses.
INVALID_JSON = ("MER-JSN-00047", "Invalid JSON request body")


@dataclass(frozen=True)
class Reply:
    """Status, extra headers and JSON payload of one API reply."""

    payload: Payload | list[Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def parse_body(raw: bytes) -> Payload | None:
    """The JSON object of the body, or None when it is not one."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def run_body(
    sandbox: Sandbox, token: SandboxToken, body: Payload | None, range_header: str
) -> Reply:
    """Miva's `JSON_API` after authentication: a single call unless `Operations` is an array."""
    if body is None:
        return Reply(error(*INVALID_JSON))
    operations = body.get("Operations")
    if not isinstance(operations, list):
        return Reply(_run_call(sandbox, token, body, body, body))
    return _run_operations(sandbox, token, body, operations, range_header)


def _run_operations(
    sandbox: Sandbox, token: SandboxToken, body: Payload, operations: list[Any], range_header: str
) -> Reply:
    total = len(operations)
    bounds = parse_range(range_header, total)
    if isinstance(bounds, Reply):
        return bounds
    first, last = bounds
    limit = sandbox.max_operations_per_request
    results: list[Any] = []
    for operation in operations[first - 1 : last]:
        # Like Miva's time budget: checked only after at least one operation ran.
        if results and limit is not None and len(results) >= limit:
            # The count is of this reply's operations, not an absolute position.
            return Reply(results, 206, {"Content-Range": f"{len(results)}/{total}"})
        results.append(_run_operation(sandbox, token, body, operation))
    return Reply(results)


def _run_operation(
    sandbox: Sandbox, token: SandboxToken, body: Payload, operation: object
) -> Payload | list[Payload]:
    op = operation if isinstance(operation, dict) else {}
    iterations = op.get("Iterations")
    if not isinstance(iterations, list):
        return _run_call(sandbox, token, body, op, op)
    return [
        _run_call(sandbox, token, body, op, it if isinstance(it, dict) else {}) for it in iterations
    ]


def _run_call(
    sandbox: Sandbox, token: SandboxToken, body: Payload, operation: Payload, iteration: Payload
) -> Payload:
    def lookup(name: str) -> object:
        # Miva's JSON_Input_Retrieve_Raw: iteration, then operation, then the top level.
        for scope in (iteration, operation, body):
            if name in scope:
                return scope[name]
        return None

    return run_function(sandbox, token, lookup)


def parse_range(header: str, total: int) -> tuple[int, int] | Reply:
    """Miva's `Range: Operations=<first>-<last>` (1-based, inclusive), or its error reply."""
    if not header:
        return 1, total
    unit, _, values = header.partition("=")
    values = values.split("=")[0].lower()
    if unit.lower() != "operations":
        return Reply(error("MER-JSN-00028", "Unknown Unit Type"))
    if "," in values:
        return _range_error("MER-JSN-00031", "Multiple ranges are not supported", total)
    parts = [part.strip() for part in values.split("-")]
    if len(parts) > 2:
        return _range_error("MER-JSN-00032", "Range Not Satisfiable", total)
    start = _bound(parts[0], 1, lower=1, upper=total)
    if start is None:
        return _range_error("MER-JSN-00033", "Range Not Satisfiable", total)
    end = _bound(parts[1] if len(parts) > 1 else "", total, lower=start, upper=total)
    if end is None:
        return _range_error("MER-JSN-00034", "Range Not Satisfiable", total)
    return start, end


def _bound(text: str, default: int, *, lower: int, upper: int) -> int | None:
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or not lower <= int(text) <= upper:
        return None
    return int(text)


def _range_error(code: str, message: str, total: int) -> Reply:
    return Reply(error(code, message), 416, {"Content-Range": f"*/{total}"})

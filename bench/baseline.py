"""The baseline: the checks done the way a backend built on Miva's official Python SDK
(`merchantapi`) does them: one blocking call per function, threads for concurrency.

`python -m bench.baseline --endpoint URL --first N --count K [--threads T]` prints one
JSON object: per-validation seconds, wall seconds, this process's CPU seconds, errors.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

from merchantapi.client import Client
from merchantapi.request import (
    CategoryListLoadQuery,
    CustomerListLoadQuery,
    OrderListLoadQuery,
    ProductListLoadQuery,
    StoreLoad,
)

from bench.store import store_code
from miva_connect.sandbox import DEMO_SIGNING_KEY, DEMO_TOKEN_GOOD

PROBES = (ProductListLoadQuery, CategoryListLoadQuery, OrderListLoadQuery, CustomerListLoadQuery)


def validate(endpoint: str, code: str) -> float:
    """Store_Load, one `Count: 1` query per role-group function, then an unsigned
    Store_Load to learn whether signatures are enforced; return the seconds taken."""
    started = time.perf_counter()
    options = {"default_store_code": code, "require_timestamps": True}
    signed = Client(endpoint, DEMO_TOKEN_GOOD, DEMO_SIGNING_KEY, options)
    if not StoreLoad(signed).send().is_success():
        raise RuntimeError("Store_Load failed")
    for probe in PROBES:
        if not probe(signed).set_count(1).send().is_success():
            raise RuntimeError(f"{probe.__name__} failed")
    unsigned = Client(endpoint, DEMO_TOKEN_GOOD, "", {**options, "signing_key_digest": None})
    if StoreLoad(unsigned).send().is_success():
        raise RuntimeError("the token accepted an unsigned request")
    return time.perf_counter() - started


def run(endpoint: str, first: int, count: int, threads: int) -> dict[str, object]:
    codes = [store_code(first + n) for n in range(count)]
    cpu, wall = time.process_time(), time.perf_counter()
    errors = 0
    seconds: list[float] = []
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(validate, endpoint, code) for code in codes]:
            try:
                seconds.append(future.result())
            except Exception:
                errors += 1
    return {
        "seconds": seconds,
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run(args.endpoint, args.first, args.count, args.threads)))


if __name__ == "__main__":
    main()

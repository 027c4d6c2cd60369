"""The benchmark's store: the sandbox with many stores and a fixed latency per reply.

`python -m bench.store --port P --latency-ms L --stores N`
"""

from __future__ import annotations

import argparse

import uvicorn

from miva_connect.sandbox import Sandbox, SandboxStore, demo_sandbox
from miva_connect.sandbox.app import create_sandbox_app


def store_code(number: int) -> str:
    """Each validation connects its own store, so no two share a merchant row."""
    return f"B{number:06d}"


def bench_sandbox(stores: int, latency: float) -> Sandbox:
    sandbox = demo_sandbox()  # its token `DEMO_TOKEN_GOOD` holds every role group
    sandbox.latency = latency
    for number in range(stores):
        sandbox.add_store(SandboxStore(code=store_code(number), name=f"Bench Store {number}"))
    return sandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--stores", type=int, default=1000)
    args = parser.parse_args()
    app = create_sandbox_app(bench_sandbox(args.stores, args.latency_ms / 1000))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=4096,
    )


if __name__ == "__main__":
    main()

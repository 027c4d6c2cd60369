"""One worker process of a multiprocess deployment, run by `tests/test_metrics_multiprocess.py`
with `PROMETHEUS_MULTIPROC_DIR` set before anything imports `prometheus_client`.

`app N`: the service (settings from the environment) answers N health probes and one
readiness probe, then prints its pid and its own scrape of /metrics.
`hold N`: keeps N database connections checked out at exit, as a worker killed in the
middle of requests would; prints its pid.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import httpx

from miva_connect.app import create_app
from miva_connect.db.engine import create_engine, watch_checkouts
from miva_connect.metrics import Metrics
from miva_connect.settings import Settings


async def serve(probes: int) -> None:
    app = create_app(Settings(_env_file=None))
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            await app({**scope, "state": dict(state or {})}, receive, send)

        transport = httpx.ASGITransport(with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            for _ in range(probes):
                (await http.get("/healthz")).raise_for_status()
            await http.get("/readyz")  # an unmigrated database: 503, after using a connection
            scrape = await http.get("/metrics")
    sys.stdout.write(f"{os.getpid()}\n{scrape.text}")


async def hold(connections: int) -> None:
    engine = create_engine(os.environ["MIVA_CONNECT_DATABASE_URL"])
    watch_checkouts(engine, Metrics().db_connections_changed)
    held = [await engine.connect() for _ in range(connections)]
    sys.stdout.write(f"{os.getpid()}\n")
    sys.stdout.flush()
    assert held
    os._exit(0)  # no clean-up: the connections stay counted in this worker's file


if __name__ == "__main__":
    mode, count = sys.argv[1], int(sys.argv[2])
    asyncio.run(serve(count) if mode == "app" else hold(count))

"""Run the benchmark and write `bench/RESULTS.md`: `python -m bench.run` (`make bench`).

The service (one worker, Postgres) and the sandbox store run as separate processes on
loopback; the store adds a fixed latency L to every reply. The same run measures the
SDK way (`bench.baseline`) against the same store. `--smoke` is a tiny run for the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.load import Channel, Load
from bench.processes import (
    cpu_seconds,
    free_port,
    machine,
    peak_rss_mb,
    python,
    running,
    wait_for,
)
from bench.report import write_report

NETWORKS = ("aiohttp", "httpcore")  # the default first
# Where the run may create (and drop) a database of its own.
SERVER_URL = os.environ.get(
    "BENCH_DATABASE_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SERVICE_LIMITS = {  # the abuse limits stay out of the way of a load test
    "MIVA_CONNECT_RATE_LIMIT_PER_SESSION": "1000 per minute",
    "MIVA_CONNECT_RATE_LIMIT_PER_CLIENT": "10000000 per hour",
    "MIVA_CONNECT_RATE_LIMIT_PER_STORE_HOST": "10000000 per hour",
    "MIVA_CONNECT_RATE_LIMIT_SESSIONS_PER_CLIENT": "10000000 per hour",
    "MIVA_CONNECT_MAX_CONCURRENT_VALIDATIONS": "1000",
}


@dataclass(frozen=True)
class Plan:
    latency_l: float = 0.100
    latency_count: int = 50
    fanout_l: float = 0.500
    fanout_count: int = 500
    cost_count: int = 1500  # per round
    cost_rounds: int = 3  # the machine is a shared VM: report the median round and the spread
    cost_concurrency: int = 32
    baseline_threads: int = 40
    health_seconds: int = 5
    warmup: int = 5


SMOKE = Plan(
    latency_l=0.02,
    latency_count=3,
    fanout_l=0.05,
    fanout_count=10,
    cost_count=10,
    cost_rounds=2,
    cost_concurrency=4,
    health_seconds=1,
    warmup=1,
)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


class Bench:
    """One run: a scratch folder and database, a channel, the processes it starts."""

    def __init__(self, plan: Plan, workdir: Path, database_url: str) -> None:
        self.plan = plan
        self.workdir = workdir
        self.database_url = database_url
        self.key = Fernet.generate_key().decode()
        self.next_code = 0
        cost = plan.cost_count * plan.cost_rounds
        per_service = plan.warmup + plan.latency_count + plan.fanout_count + cost
        self.stores = len(NETWORKS) * per_service
        self.bin = Path(sys.executable).parent / "miva-connect"

    def env(self, **extra: str) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT")
        return {
            **{k: v for k, v in os.environ.items() if k in keep},
            "MIVA_CONNECT_DATABASE_URL": self.database_url,
            "MIVA_CONNECT_ENCRYPTION_KEYS": self.key,
            "MIVA_CONNECT_ALLOW_PRIVATE_NETWORKS": "true",
            **SERVICE_LIMITS,
            **extra,
        }

    def codes(self, count: int) -> list[str]:
        from bench.store import store_code

        first, self.next_code = self.next_code, self.next_code + count
        return [store_code(first + n) for n in range(count)]

    def cli(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603
            [str(self.bin), *args],
            env=self.env(),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def channel(self) -> Channel:
        self.cli("db", "upgrade")
        made = json.loads(
            self.cli("channels", "add", "--name", "Bench", "--redirect-url", "https://ch.test/r")
        )
        return Channel(made["id"], made["secret"])

    @contextmanager
    def store(self, latency: float) -> Iterator[str]:
        """The sandbox store with added latency; yields its json.mvc URL."""
        port = free_port()
        argv = python("bench.store", "--port", str(port), "--stores", str(self.stores))
        argv += ["--latency-ms", str(latency * 1000)]
        with running(argv, env=dict(os.environ), cwd=Path.cwd(), log=self.log("store")):
            wait_for(f"http://127.0.0.1:{port}/")
            yield f"http://127.0.0.1:{port}/mm5/json.mvc"

    @contextmanager
    def service(self, network: str) -> Iterator[tuple[str, int]]:
        """The service, one worker; yields its base URL and PID."""
        port = free_port()
        env = self.env(MIVA_CONNECT_STORE_NETWORK=network)
        argv = [str(self.bin), "serve", "--port", str(port)]
        with running(argv, env=env, cwd=self.workdir, log=self.log(f"service-{network}")) as p:
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/healthz")
            yield base, p.pid

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"


async def measure_service(bench: Bench, channel: Channel, base: str, pid: int) -> dict[str, Any]:
    plan = bench.plan
    async with Load(base, channel) as load:
        with bench.store(plan.latency_l) as store_url:
            for session, code in zip(
                await load.open_sessions(plan.warmup), bench.codes(plan.warmup), strict=True
            ):
                await load.validate(session, store_url, code)
            sessions = await load.open_sessions(plan.latency_count)
            outcomes = [
                await load.validate(session, store_url, code)
                for session, code in zip(sessions, bench.codes(plan.latency_count), strict=True)
            ]
        seconds = [o.seconds for o in outcomes]
        latency = {
            "L": plan.latency_l,
            "count": len(seconds),
            "errors": sum(not o.ok for o in outcomes),
            "p50": percentile(seconds, 50),
            "p95": percentile(seconds, 95),
        }

        with bench.store(plan.fanout_l) as store_url:
            sessions = await load.open_sessions(plan.fanout_count)
            codes = bench.codes(plan.fanout_count)
            started = time.perf_counter()
            outcomes = await asyncio.gather(
                *(load.validate(s, store_url, c) for s, c in zip(sessions, codes, strict=True))
            )
            wall = time.perf_counter() - started
        fanout = {
            "L": plan.fanout_l,
            "count": len(outcomes),
            "errors": sum(not o.ok for o in outcomes),
            "wall": wall,
            "peak_rss_mb": peak_rss_mb(pid),
        }

        with bench.store(0.0) as store_url:
            rounds = [await _saturate(bench, load, store_url, pid) for _ in range(plan.cost_rounds)]
        cost = _cost(rounds, concurrency=plan.cost_concurrency)
    return {"latency": latency, "fanout": fanout, "cost": cost}


async def _saturate(bench: Bench, load: Load, store_url: str, pid: int) -> dict[str, Any]:
    """One round of the cost phase: `cost_count` validations, `cost_concurrency` at a time."""
    plan = bench.plan
    sessions = await load.open_sessions(plan.cost_count)
    codes = bench.codes(plan.cost_count)
    gate = asyncio.Semaphore(plan.cost_concurrency)

    async def one(session: str, code: str) -> bool:
        async with gate:
            return (await load.validate(session, store_url, code)).ok

    cpu, started = cpu_seconds(pid), time.perf_counter()
    oks = await asyncio.gather(*(one(s, c) for s, c in zip(sessions, codes, strict=True)))
    wall = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu
    return {"count": len(oks), "errors": sum(not ok for ok in oks), "wall": wall, "cpu": cpu}


def _cost(rounds: list[dict[str, Any]], **about: int) -> dict[str, Any]:
    """The median round's figures, with every round's kept."""
    per_second = [r["count"] / r["wall"] for r in rounds]
    cpu_ms = [r["cpu"] / r["count"] * 1000 for r in rounds]
    return {
        "count": rounds[0]["count"],
        "rounds": len(rounds),
        **about,
        "errors": sum(r["errors"] for r in rounds),
        "per_second": statistics.median(per_second),
        "cpu_ms_per_validation": statistics.median(cpu_ms),
        "round_per_second": per_second,
        "round_cpu_ms": cpu_ms,
    }


def measure_baseline(bench: Bench) -> dict[str, Any]:
    plan = bench.plan

    def sdk(store_url: str, count: int, threads: int) -> dict[str, Any]:
        argv = python("bench.baseline", "--endpoint", store_url, "--count", str(count))
        argv += ["--threads", str(threads)]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)  # noqa: S603
        return dict(json.loads(done.stdout))

    with bench.store(plan.latency_l) as store_url:
        sdk(store_url, plan.warmup, 1)
        sequential = sdk(store_url, plan.latency_count, 1)
    with bench.store(plan.fanout_l) as store_url:
        pooled = sdk(store_url, plan.fanout_count, plan.baseline_threads)
    with bench.store(0.0) as store_url:
        saturated = [
            sdk(store_url, plan.cost_count, plan.baseline_threads) for _ in range(plan.cost_rounds)
        ]
    return {
        "latency": {
            "L": plan.latency_l,
            "count": len(sequential["seconds"]),
            "errors": sequential["errors"],
            "p50": percentile(sequential["seconds"], 50),
            "p95": percentile(sequential["seconds"], 95),
        },
        "fanout": {
            "L": plan.fanout_l,
            "count": plan.fanout_count,
            "threads": plan.baseline_threads,
            "errors": pooled["errors"],
            "wall": pooled["wall"],
        },
        "cost": _cost(
            [{**r, "count": plan.cost_count} for r in saturated],
            threads=plan.baseline_threads,
        ),
    }


def measure_health(base: str, seconds: int) -> dict[str, float]:
    """Requests per second from wrk, a load generator in its own process."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: run scripts/ensure-wrk.sh (Debian's package)")
    rates = {}
    for path in ("/healthz", "/readyz"):
        argv = [wrk, "-t1", "-c32", f"-d{seconds}s", f"{base}{path}"]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout  # noqa: S603
        found = re.search(r"Requests/sec:\s+([\d.]+)", out)
        failures = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if found is None or failures is not None:
            raise RuntimeError(f"wrk against {path}: {out}")
        rates[path] = float(found.group(1))
    return rates


@asynccontextmanager
async def bench_database() -> AsyncIterator[str]:
    """A new Postgres database for this run, dropped afterwards."""
    server = make_url(SERVER_URL).set(drivername="postgresql+asyncpg")
    name = f"miva_connect_bench_{secrets.token_hex(6)}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def run(plan: Plan, workdir: Path) -> dict[str, Any]:
    async with bench_database() as database_url:
        bench = Bench(plan, workdir, database_url)
        channel = bench.channel()
        services: dict[str, Any] = {}
        health: dict[str, float] = {}
        for network in NETWORKS:
            with bench.service(network) as (base, pid):
                services[network] = await measure_service(bench, channel, base, pid)
                if network == NETWORKS[0]:
                    health = measure_health(base, plan.health_seconds)
        baseline = measure_baseline(bench)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": machine(),
        "plan": asdict(plan),
        "service": services,
        "baseline": baseline,
        "health": health,
    }


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a tiny run, for the tests")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="miva-bench-") as scratch:
        results = asyncio.run(run(SMOKE if args.smoke else Plan(), Path(scratch)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    write_report(results, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""`miva-connect serve` as a real process: workers, graceful shutdown, startup checks."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from miva_connect.channels.service import ChannelService
from miva_connect.db.engine import Database, create_engine
from miva_connect.sandbox import DEMO_SIGNING_KEY, DEMO_STORE_CODE, DEMO_TOKEN_GOOD, demo_sandbox
from miva_connect.sandbox import serve_in_thread as serve_sandbox
from tests import canaries
from tests.conftest import (
    SandboxServer,
    _create_postgres_database,
    _drop_postgres_database,
    _upgrade,
)
from tests.test_cli import cli, free_port, wait_for

CLI = str(Path(sys.executable).parent / "miva-connect")
REDIS_URL = "redis://127.0.0.1:6379/0"
UNLIMITED = "100000 per hour"
REDIRECT = "https://w.example/back"


@pytest.fixture(scope="module")
async def postgres_url() -> AsyncIterator[str]:
    """One migrated Postgres database that every worker of these tests shares."""
    url = await _create_postgres_database()
    try:
        await _upgrade(url)
        yield url
    finally:
        await _drop_postgres_database(url)


@pytest.fixture
def env(postgres_url: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MIVA_", "HTTP", "ALL_"))}
    return {
        **clean,
        "MIVA_CONNECT_DATABASE_URL": postgres_url,
        "MIVA_CONNECT_ENCRYPTION_KEYS": canaries.fernet_key(),
        "MIVA_CONNECT_REDIS_URL": REDIS_URL,
        "MIVA_CONNECT_ALLOW_PRIVATE_NETWORKS": "true",
        "MIVA_CONNECT_LOG_FORMAT": "json",
        # Every request of these tests comes from 127.0.0.1, and Redis outlives test runs.
        "MIVA_CONNECT_RATE_LIMIT_PER_CLIENT": UNLIMITED,
        "MIVA_CONNECT_RATE_LIMIT_PER_STORE_HOST": UNLIMITED,
        "MIVA_CONNECT_RATE_LIMIT_SESSIONS_PER_CLIENT": UNLIMITED,
    }


@contextmanager
def serving(*args: str, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """`miva-connect serve ARGS` until the test stops it; killed if it outlives the test."""
    log = cwd / "serve.log"
    with (
        log.open("w") as stderr,
        subprocess.Popen(  # noqa: S603
            [CLI, "serve", *args],
            env=env,
            cwd=cwd,
            stderr=stderr,
            text=True,
            start_new_session=True,
        ) as process,
    ):
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    text = log.read_text()
    assert not canaries.found_in(text), "a secret was logged"
    assert "Traceback" not in text, text


@pytest.fixture
async def channel(postgres_url: str) -> tuple[str, str]:
    """A channel registered in the shared database: (id, secret) for HTTP Basic."""
    db = Database(create_engine(postgres_url))
    try:
        added = await ChannelService(db).register("W", REDIRECT, f"w-{secrets.token_hex(4)}")
    finally:
        await db.dispose()
    canaries.register(added.secret)
    return added.id, added.secret


def open_session(base: str, channel: tuple[str, str]) -> str:
    response = httpx.post(f"{base}/v1/sessions", json={"state": "s"}, auth=channel)
    assert response.status_code == 201, response.text
    return canaries.bearer(str(response.json()["id"]))


def worker_pids(supervisor: int) -> set[int]:
    listing = subprocess.run(  # noqa: S603
        ["/usr/bin/ps", "-ww", "-o", "pid=,args=", "--ppid", str(supervisor)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {int(line.split()[0]) for line in listing.splitlines() if "spawn_main" in line}


def log_records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def answered_by(log: Path) -> dict[str, int]:
    """Request id -> the pid of the worker that wrote its access log line."""
    return {r["request_id"]: r["pid"] for r in log_records(log) if r["logger"] == "uvicorn.access"}


def ready_workers(supervisor: int, log: Path) -> set[int]:
    """Workers that finished starting (a slow one may have been replaced by the supervisor)."""
    started = {r["pid"] for r in log_records(log) if r["event"] == "Application startup complete."}
    return worker_pids(supervisor) & started


def process_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def assert_refused(url: str) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)


class TestWorkers:
    def test_two_workers_share_sessions_and_rate_limits(
        self,
        env: dict[str, str],
        tmp_path: Path,
        sandbox: SandboxServer,
        channel: tuple[str, str],
    ) -> None:
        env["MIVA_CONNECT_RATE_LIMIT_PER_SESSION"] = "3 per hour"
        port, log = free_port(), tmp_path / "serve.log"
        base = f"http://127.0.0.1:{port}"
        with serving("--port", str(port), "--workers", "2", env=env, cwd=tmp_path) as service:
            wait_until(lambda: len(ready_workers(service.pid, log)) == 2, timeout=60)
            workers = ready_workers(service.pid, log)
            metrics = {process_environment(pid)["PROMETHEUS_MULTIPROC_DIR"] for pid in workers}
            assert len(metrics) == 1
            assert Path(next(iter(metrics))).is_dir()

            session = open_session(base, channel)
            # httpx.get/post open a new connection each time: any worker may answer.
            reads = [httpx.get(f"{base}/v1/sessions/{session}") for _ in range(20)]
            assert {(r.status_code, r.json()["status"]) for r in reads} == {(200, "pending")}

            check = f"{base}/v1/sessions/{session}/store-url"
            attempts: list[httpx.Response] = []
            while len(attempts) < 60:
                attempts.append(httpx.post(check, json={"store_url": sandbox.endpoint}))
                pids = answered_by(log)
                refused_by = {pids.get(r.headers["x-request-id"]) for r in attempts[3:]}
                if refused_by == workers:
                    break
            service.send_signal(signal.SIGTERM)
            assert service.wait(timeout=20) == 0
        # Three attempts in all, whichever worker counted them; then both workers refuse.
        assert [r.status_code for r in attempts[:3]] == [200, 200, 200]
        assert {r.status_code for r in attempts[3:]} == {429}
        assert refused_by == workers
        assert not Path(next(iter(metrics))).exists()


class TestGracefulShutdown:
    @pytest.mark.parametrize("workers", ["1", "2"])
    def test_sigterm_lets_a_validation_in_flight_finish(
        self, env: dict[str, str], tmp_path: Path, channel: tuple[str, str], workers: str
    ) -> None:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        store = demo_sandbox()
        store.record_requests = True
        with (
            serve_sandbox(store) as store_url,
            serving("--port", str(port), "--workers", workers, env=env, cwd=tmp_path) as service,
            ThreadPoolExecutor(1) as pool,
        ):
            wait_for(f"{base}/readyz", timeout=60)
            session = open_session(base, channel)
            store.latency = 3.0
            credentials = {
                "store_url": f"{store_url}/mm5/json.mvc",
                "store_code": DEMO_STORE_CODE,
                "api_key": DEMO_TOKEN_GOOD,
                "signing_key": DEMO_SIGNING_KEY,
            }
            answer = pool.submit(
                httpx.post,
                f"{base}/v1/sessions/{session}/credentials",
                json=credentials,
                timeout=30,
            )
            wait_until(lambda: len(store.requests) > 0)
            service.send_signal(signal.SIGTERM)
            wait_until(lambda: refuses(f"{base}/healthz"), timeout=2.5)
            assert not answer.done(), "the store's answer came before the refusal was seen"
            connected = answer.result()
            assert service.wait(timeout=20) == 0
        assert connected.status_code == 200, connected.text
        assert connected.json()["status"] == "connected"
        assert connected.json()["redirect_url"].startswith(f"{REDIRECT}?state=s")
        assert_refused(f"{base}/healthz")


def refuses(url: str) -> bool:
    try:
        httpx.get(url, timeout=0.2)
    except httpx.ConnectError:
        return True
    except httpx.TransportError:
        pass
    return False


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The refusal lines; the logs (JSON lines) are skipped."""
    assert "Traceback" not in result.stderr
    prefix = "miva-connect: "
    return [line.removeprefix(prefix) for line in result.stderr.splitlines() if prefix in line]


class TestStartupChecks:
    def serve(self, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
        result = cli("serve", "--port", str(free_port()), env=env, cwd=cwd)
        assert result.returncode == 2, result.stderr
        return result

    def test_an_unreachable_database(self, env: dict[str, str], tmp_path: Path) -> None:
        env["MIVA_CONNECT_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
        (line,) = problems(self.serve(env, tmp_path))
        assert line.startswith("MIVA_CONNECT_DATABASE_URL: cannot use the database (")

    def test_an_unreachable_redis(self, env: dict[str, str], tmp_path: Path) -> None:
        env["MIVA_CONNECT_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
        assert problems(self.serve(env, tmp_path)) == [
            "MIVA_CONNECT_REDIS_URL: Redis does not answer"
        ]

    def test_a_schema_not_at_head(self, env: dict[str, str], tmp_path: Path) -> None:
        env["MIVA_CONNECT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.db'}"
        assert problems(self.serve(env, tmp_path)) == [
            "the database schema is not up to date: run `miva-connect db upgrade`"
        ]

    def test_production_needs_an_https_public_url(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        env |= {
            "MIVA_CONNECT_ENVIRONMENT": "production",
            "MIVA_CONNECT_ALLOW_PRIVATE_NETWORKS": "false",
            "MIVA_CONNECT_PUBLIC_URL": "http://connect.example.com",
        }
        assert problems(self.serve(env, tmp_path)) == [
            "MIVA_CONNECT_PUBLIC_URL: must be an https:// URL in production"
        ]

    def test_several_settings_problems_are_several_lines(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        env |= {
            "MIVA_CONNECT_ENVIRONMENT": "production",
            "MIVA_CONNECT_ENCRYPTION_KEYS": "not-a-key",
            "MIVA_CONNECT_SESSION_TTL_SECONDS": "soon",
            "MIVA_CONNECT_METRICS": "on",
        }
        lines = problems(self.serve(env, tmp_path))
        assert [line.split(":")[0] for line in lines] == [
            "MIVA_CONNECT_ALLOW_PRIVATE_NETWORKS",
            "MIVA_CONNECT_PUBLIC_URL",
            "MIVA_CONNECT_SESSION_TTL_SECONDS",
            "MIVA_CONNECT_METRICS_TOKEN",
            "MIVA_CONNECT_ENCRYPTION_KEYS",
        ]

    def test_key_database_and_workers_problems_together(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        del env["MIVA_CONNECT_ENCRYPTION_KEYS"], env["MIVA_CONNECT_REDIS_URL"]
        env["MIVA_CONNECT_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
        result = cli("serve", "--port", str(free_port()), "--workers", "3", env=env, cwd=tmp_path)
        assert result.returncode == 2
        keys, workers, database = problems(result)
        assert keys.startswith("MIVA_CONNECT_ENCRYPTION_KEYS is not set")
        assert workers == (
            "--workers 3 needs MIVA_CONNECT_REDIS_URL: without Redis each worker "
            "would keep its own rate-limit counters"
        )
        assert database.startswith("MIVA_CONNECT_DATABASE_URL: cannot use the database (")

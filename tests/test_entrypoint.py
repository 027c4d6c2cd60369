"""The container's entrypoint, `scripts/docker-entrypoint.sh`, run outside a container as
real processes; and the container files that use it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests import canaries
from tests.conftest import _create_postgres_database, _drop_postgres_database
from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "scripts" / "docker-entrypoint.sh"
VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """An empty Postgres database of this test's own, dropped afterwards."""
    url = await _create_postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


def base_env() -> dict[str, str]:
    """The runner's environment without settings of ours or the entrypoint's variables."""
    ours = ("MIVA_", "HTTP", "ALL_", "HOST", "PORT", "WORKERS")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(ours)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    return env


def listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except httpx.TransportError:
        return False
    return True


@pytest.fixture
def entrypoint(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Started entrypoints; at the end, whatever is left in their groups is stopped."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start(env: dict[str, str], cwd: Path, started: list[subprocess.Popen[str]]) -> Path:
    log = cwd / "entrypoint.log"
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603
            ["/bin/sh", str(ENTRYPOINT)],
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    started.append(process)
    return log


class TestEntrypoint:
    def test_migrates_then_serves_and_sigterm_stops_the_server(
        self, postgres_url: str, tmp_path: Path, entrypoint: list[subprocess.Popen[str]]
    ) -> None:
        port = free_port()
        env = base_env() | {
            # As in the image: production, which needs an https PUBLIC_URL.
            "MIVA_CONNECT_ENVIRONMENT": "production",
            "MIVA_CONNECT_PUBLIC_URL": "https://connect.example.com",
            "MIVA_CONNECT_DATABASE_URL": postgres_url,
            "MIVA_CONNECT_ENCRYPTION_KEYS": canaries.fernet_key(),
            "MIVA_CONNECT_LOG_FORMAT": "json",
            "HOST": "127.0.0.1",
            "PORT": str(port),
        }
        log = start(env, tmp_path, entrypoint)
        (process,) = entrypoint
        deadline = time.monotonic() + 60
        while not listening(port):
            assert process.poll() is None, f"the entrypoint exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"nothing listens:\n{log.read_text()}"
            time.sleep(0.2)

        # exec: the script's own process has become the server.
        command = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"serve" in command
        assert not any(part.endswith(b"docker-entrypoint.sh") for part in command)

        health = httpx.get(f"http://127.0.0.1:{port}/healthz")
        assert health.status_code == 200
        # /readyz checks that the schema is at head: the migrations ran.
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ok"})

        started = time.monotonic()
        os.kill(process.pid, signal.SIGTERM)
        code = process.wait(timeout=10)
        assert time.monotonic() - started < 5
        output = log.read_text()
        # A graceful stop: in-flight requests finish, the lifespan closes, exit 0.
        assert code == 0, output
        assert "Application shutdown complete" in output
        assert "database is at the latest revision" in output
        assert not listening(port)
        assert "Traceback" not in output
        assert not canaries.found_in(output), "a secret was logged"

    def test_an_unreachable_database_stops_it_before_serving(
        self, tmp_path: Path, entrypoint: list[subprocess.Popen[str]]
    ) -> None:
        port = free_port()
        env = base_env() | {
            "MIVA_CONNECT_ENVIRONMENT": "development",
            "MIVA_CONNECT_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/none",
            "MIVA_CONNECT_ENCRYPTION_KEYS": canaries.fernet_key(),
            "HOST": "127.0.0.1",
            "PORT": str(port),
        }
        result = subprocess.run(  # noqa: S603
            ["/bin/sh", str(ENTRYPOINT)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode != 0
        assert result.stderr.splitlines() == [
            "miva-connect: database error (ConnectionRefusedError); "
            "check MIVA_CONNECT_DATABASE_URL and that the database exists"
        ]
        assert result.stdout == ""
        assert not listening(port)


STUB = """#!/bin/sh
echo "$$ $*" >> "$CALLS"
if [ "$1" = db ]; then exit "${UPGRADE_STATUS:-0}"; fi
"""


class TestEntrypointArguments:
    """With a stand-in `miva-connect` that records its calls: what the script runs."""

    def run(self, tmp_path: Path, **variables: str) -> tuple[int, list[tuple[int, str]]]:
        stub = tmp_path / "bin" / "miva-connect"
        stub.parent.mkdir()
        stub.write_text(STUB)
        stub.chmod(0o755)
        calls = tmp_path / "calls"
        env = base_env() | variables | {"CALLS": str(calls), "PATH": f"{stub.parent}:/usr/bin:/bin"}
        process = subprocess.Popen(["/bin/sh", str(ENTRYPOINT)], env=env)  # noqa: S603
        code = process.wait(timeout=30)
        recorded = []
        for line in calls.read_text().splitlines():
            pid, _, args = line.partition(" ")
            recorded.append((int(pid) - process.pid, args))
        return code, recorded

    def test_defaults_listen_on_every_address_at_8000(self, tmp_path: Path) -> None:
        code, calls = self.run(tmp_path)
        assert code == 0
        # The server runs in the script's own process (exec); the upgrade does not.
        assert [args for _, args in calls] == [
            "db upgrade",
            "serve --host 0.0.0.0 --port 8000 --workers 1",
        ]
        assert calls[0][0] != 0
        assert calls[1][0] == 0

    def test_host_port_and_workers_come_from_the_environment(self, tmp_path: Path) -> None:
        code, calls = self.run(tmp_path, HOST="127.0.0.1", PORT="9000", WORKERS="3")
        assert code == 0
        assert calls[-1] == (0, "serve --host 127.0.0.1 --port 9000 --workers 3")

    def test_a_failed_upgrade_starts_nothing(self, tmp_path: Path) -> None:
        code, calls = self.run(tmp_path, UPGRADE_STATUS="1")
        assert code == 1
        assert [args for _, args in calls] == ["db upgrade"]


class TestContainerFiles:
    def test_the_dockerfile_installs_the_lock_and_runs_the_entrypoint_as_non_root(self) -> None:
        dockerfile = (ROOT / "Dockerfile").read_text()
        assert "uv sync --locked --no-dev --no-editable" in dockerfile
        assert "COPY --from=build /app/.venv /app/.venv" in dockerfile
        assert "scripts/docker-entrypoint.sh" in dockerfile
        assert 'ENTRYPOINT ["docker-entrypoint.sh"]' in dockerfile
        assert re.search(r"^HEALTHCHECK .*\n.*/healthz", dockerfile, re.M)
        users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
        assert users == ["10001"]
        assert os.access(ENTRYPOINT, os.X_OK)

    def test_one_uv_version_everywhere(self) -> None:
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        required = pyproject["tool"]["uv"]["required-version"]
        makefile = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
        dockerfile = re.search(r"uv==(\S+)", (ROOT / "Dockerfile").read_text())
        assert makefile
        assert dockerfile
        assert required == f"=={makefile.group(1)}" == f"=={dockerfile.group(1)}"

    def test_compose_waits_for_healthy_postgres_and_redis(self) -> None:
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        service = compose["services"]["miva-connect"]
        assert service["build"] == "."
        assert service["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
        environment = service["environment"]
        assert environment["MIVA_CONNECT_ENCRYPTION_KEYS"].startswith(
            "${MIVA_CONNECT_ENCRYPTION_KEYS:?"
        )
        assert environment["MIVA_CONNECT_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in environment["MIVA_CONNECT_DATABASE_URL"]
        assert environment["MIVA_CONNECT_REDIS_URL"] == "redis://redis:6379/0"
        assert compose["services"]["postgres"]["image"] == "postgres:16"
        assert compose["services"]["redis"]["image"] == "redis:7"
        for name in ("postgres", "redis"):
            assert compose["services"][name]["healthcheck"]["test"]
        assert "postgres-data" in compose["volumes"]

"""The `miva-connect` command line, run as a user runs it: a real process."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from miva_connect.sandbox import DEMO_SIGNING_KEY, DEMO_STORE_CODE, DEMO_TOKEN_GOOD
from tests import canaries
from tests.conftest import SandboxServer

CLI = str(Path(sys.executable).parent / "miva-connect")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MIVA_", "HTTP", "ALL_"))}
    return {**clean, "MIVA_CONNECT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603
        [CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert not canaries.found_in(result.stdout + result.stderr), "a secret was printed"
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestKeysAndChannels:
    def test_keys_generate_prints_a_fernet_key(self, env: dict[str, str], tmp_path: Path) -> None:
        result = cli("keys", "generate", env=env, cwd=tmp_path)
        assert result.returncode == 0
        Fernet(result.stdout.strip())

    def test_keys_rotate_reports_what_it_did(self, env: dict[str, str], tmp_path: Path) -> None:
        env["MIVA_CONNECT_ENCRYPTION_KEYS"] = f"{canaries.fernet_key()},{canaries.fernet_key()}"
        assert cli("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        result = cli("keys", "rotate", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"rotated": 0, "failed_merchant_ids": []}

    def test_channels_add_prints_the_secret_once_and_stores_its_hash(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        assert cli("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        result = cli(
            "channels",
            "add",
            "--name",
            "Shop App",
            "--redirect-url",
            "https://shop.example/back",
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        channel = json.loads(result.stdout)
        assert channel["slug"] == "shop-app"
        assert set(channel) == {"id", "slug", "name", "redirect_url", "secret"}
        with sqlite3.connect(tmp_path / "cli.db") as db:
            (stored,) = db.execute("SELECT secret_hash FROM channel").fetchone()
        assert stored == hashlib.sha256(channel["secret"].encode()).hexdigest()

    def test_channels_add_refuses_a_taken_slug_and_a_bad_url(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        cli("db", "upgrade", env=env, cwd=tmp_path)
        add = ("channels", "add", "--name", "A", "--slug", "dup")
        assert (
            cli(*add, "--redirect-url", "https://a.example/", env=env, cwd=tmp_path).returncode == 0
        )
        again = cli(*add, "--redirect-url", "https://a.example/", env=env, cwd=tmp_path)
        assert again.returncode == 1
        assert "taken" in again.stderr
        bad = cli(
            "channels", "add", "--name", "B", "--redirect-url", "not-a-url", env=env, cwd=tmp_path
        )
        assert bad.returncode == 1
        assert "redirect URL" in bad.stderr
        assert "Traceback" not in again.stderr + bad.stderr


class TestDatabaseProblems:
    def test_commands_before_db_upgrade_say_what_to_run(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        result = cli(
            "channels",
            "add",
            "--name",
            "A",
            "--redirect-url",
            "https://a.example/",
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 2
        assert "run `miva-connect db upgrade`" in result.stderr
        assert "Traceback" not in result.stderr

    def test_a_database_that_does_not_exist_is_one_line(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        env["MIVA_CONNECT_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
        result = cli("db", "upgrade", env=env, cwd=tmp_path)
        assert result.returncode == 1
        assert "database error" in result.stderr
        assert "Traceback" not in result.stderr


class TestServeRefusesBadConfiguration:
    @pytest.mark.parametrize(
        ("keys", "message"),
        [
            (None, "MIVA_CONNECT_ENCRYPTION_KEYS is not set"),
            ("not-a-key", "encryption key #1 is not a Fernet key"),
        ],
    )
    def test_one_clear_line_instead_of_a_traceback(
        self, env: dict[str, str], tmp_path: Path, keys: str | None, message: str
    ) -> None:
        if keys:
            env["MIVA_CONNECT_ENCRYPTION_KEYS"] = keys
        result = cli("serve", "--port", str(free_port()), env=env, cwd=tmp_path)
        assert result.returncode == 2
        assert message in result.stderr
        assert "Traceback" not in result.stderr

    def test_settings_errors_name_the_variable(self, env: dict[str, str], tmp_path: Path) -> None:
        env["MIVA_CONNECT_SESSION_TTL_SECONDS"] = "soon"
        result = cli("serve", env=env, cwd=tmp_path)
        assert result.returncode == 2
        assert "MIVA_CONNECT_SESSION_TTL_SECONDS" in result.stderr


class TestCheck:
    def test_accepted_credentials_exit_0(
        self, env: dict[str, str], tmp_path: Path, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store("CLI Store")
        token = sandbox.new_token()
        env |= {
            "MIVA_CONNECT_ALLOW_PRIVATE_NETWORKS": "true",
            "MIVA_API_KEY": token.access_token,
            "MIVA_SIGNING_KEY": token.signing_key,
        }
        result = cli(
            "check",
            "--store-url",
            sandbox.base_url + "/mm5",
            "--store-code",
            store.code,
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert (report["status"], report["store_name"]) == ("ok", "CLI Store")
        assert report["store_url"] == sandbox.endpoint

    def test_rejected_credentials_exit_1_with_the_api_diagnosis(
        self, env: dict[str, str], tmp_path: Path, sandbox: SandboxServer
    ) -> None:
        store = sandbox.new_store()
        token = sandbox.new_token()
        env |= {
            "MIVA_CONNECT_ALLOW_PRIVATE_NETWORKS": "true",
            "MIVA_API_KEY": token.access_token,
            "MIVA_SIGNING_KEY": canaries.signing_key(),
        }
        result = cli(
            "check",
            "--store-url",
            sandbox.endpoint,
            "--store-code",
            store.code,
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 1
        assert json.loads(result.stdout)["error"]["code"] == "invalid_signature"

    def test_without_a_terminal_a_missing_key_is_one_line(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        env["MIVA_API_KEY"] = "token"
        result = subprocess.run(  # noqa: S603
            [CLI, "check", "--store-url", "https://s.example", "--store-code", "S"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert "MIVA_SIGNING_KEY is not set" in result.stderr
        assert "Traceback" not in result.stderr

    def test_keys_are_not_accepted_as_arguments(self, env: dict[str, str], tmp_path: Path) -> None:
        result = cli(
            "check",
            "--store-url",
            "x",
            "--store-code",
            "y",
            "--api-key",
            "z",
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 2
        assert "unrecognized arguments" in result.stderr


@contextmanager
def running(*args: str, env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """A long-running command; stderr (the logs) goes to a file so the pipe never fills."""
    with (
        (cwd / f"{args[0]}.log").open("w") as log,
        subprocess.Popen(  # noqa: S603
            [CLI, *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        ) as process,
    ):
        try:
            yield process
        finally:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    assert not canaries.found_in((cwd / f"{args[0]}.log").read_text()), "a secret was logged"


def wait_for(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


class TestServers:
    def test_sandbox_serves_the_demo_store(self, env: dict[str, str], tmp_path: Path) -> None:
        port = free_port()
        with running("sandbox", "--port", str(port), env=env, cwd=tmp_path):
            wait_for(f"http://127.0.0.1:{port}/")
            body = json.dumps({"Store_Code": DEMO_STORE_CODE, "Function": "Store_Load"}).encode()
            import hmac

            signature = base64.b64encode(
                hmac.new(base64.b64decode(DEMO_SIGNING_KEY), body, "sha256").digest()
            ).decode()
            response = httpx.post(
                f"http://127.0.0.1:{port}/mm5/json.mvc",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Miva-API-Authorization": f"MIVA-HMAC-SHA256 {DEMO_TOKEN_GOOD}:{signature}",
                },
            )
            assert response.json()["data"]["name"] == "Demo Store"

    def test_serve_answers_health_checks(self, env: dict[str, str], tmp_path: Path) -> None:
        port = free_port()
        env["MIVA_CONNECT_ENCRYPTION_KEYS"] = canaries.fernet_key()
        assert cli("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        add = ("channels", "add", "--name", "Serve", "--redirect-url", "https://s.example/")
        channel = json.loads(cli(*add, env=env, cwd=tmp_path).stdout)
        with running("serve", "--port", str(port), env=env, cwd=tmp_path):
            wait_for(f"http://127.0.0.1:{port}/healthz")
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
            assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
            assert "server" not in ready.headers
            opened = httpx.post(
                f"http://127.0.0.1:{port}/v1/sessions",
                json={"state": "s"},
                auth=(channel["id"], channel["secret"]),
            )
        # Without PUBLIC_URL, links point where the server listens.
        assert opened.json()["connect_url"].startswith(f"http://127.0.0.1:{port}/connect/")

    def test_demo_refuses_a_busy_port_before_doing_anything(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        env["MIVA_CONNECT_ENCRYPTION_KEYS"] = canaries.fernet_key()
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            result = cli("demo", "--port", str(port), env=env, cwd=tmp_path)
        assert result.returncode == 2
        assert f"port {port} is in use" in result.stderr
        assert not (tmp_path / "cli.db").exists()

    def test_demo_walkthrough_connects_the_sandbox_store(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        api, store = free_port(), free_port()
        env["MIVA_CONNECT_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
        args = ("demo", "--port", str(api), "--sandbox-port", str(store))
        with running(*args, env=env, cwd=tmp_path) as demo:
            assert demo.stdout is not None
            printed = []
            for line in demo.stdout:
                printed.append(line)
                if line.startswith("# ---- end of walk-through"):
                    break
            wait_for(f"http://127.0.0.1:{api}/healthz")
            script = "".join(printed)
            walk = script[script.index("# ---- walk-through") :]
            result = subprocess.run(  # noqa: S603
                ["/bin/bash", "-c", walk], capture_output=True, text=True, timeout=60, check=False
            )
        assert '"code":"invalid_signature"' in result.stdout
        assert '"status":"connected"' in result.stdout
        location = re.search(r"(?im)^location: (\S+)", result.stdout)
        assert location, result.stdout + result.stderr
        assert location.group(1).startswith(f"http://127.0.0.1:{store}/channel/return?")
        assert "state=demo-state-42" in location.group(1)
        assert re.search(r"merchant_id=[0-9a-f-]{36}", location.group(1))

"""Several workers: each writes its metrics to files in `PROMETHEUS_MULTIPROC_DIR`, and a
scrape of any one of them adds up every worker's.

`prometheus_client` chooses file-backed values when it is first imported, so the workers
are separate processes started with the variable set (as `serve --workers` starts them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from tests import canaries
from tests.api.test_metrics import REQUESTS, parse, value

IN_USE = "miva_connect_db_connections_in_use"
ROOT = Path(__file__).resolve().parent.parent


def start(directory: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIVA_CONNECT_")}
    env.update(
        PROMETHEUS_MULTIPROC_DIR=str(directory / "metrics"),
        MIVA_CONNECT_DATABASE_URL=f"sqlite+aiosqlite:///{directory / 'workers.db'}",
        MIVA_CONNECT_ENCRYPTION_KEYS=canaries.fernet_key(),
        MIVA_CONNECT_METRICS="on",
        MIVA_CONNECT_LOG_LEVEL="WARNING",
    )
    return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "tests.metrics_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    """The worker's pid and its scrape."""
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    pid, _, scrape = out.partition("\n")
    return int(pid), scrape


def files_scrape(directory: Path) -> str:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry).decode()


def test_a_scrape_adds_up_every_worker(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    running = [start(tmp_path, "hold", "2"), start(tmp_path, "app", "2")]
    (holder, _), (_, first) = (finish(process) for process in running)
    _, second = finish(start(tmp_path, "app", "3"))

    assert value(parse(first), REQUESTS, route="/healthz", method="GET", status="200") == 2
    samples = parse(second)
    assert value(samples, REQUESTS, route="/healthz", method="GET", status="200") == 5
    assert value(samples, REQUESTS, route="/metrics", method="GET", status="200") == 1
    assert value(samples, REQUESTS, route="/readyz", method="GET", status="503") == 2
    # livesum: connections in use are summed over workers that are still alive...
    assert value(samples, IN_USE) == 2
    # ...until the supervisor reports the holder dead.
    mark_process_dead(holder, str(tmp_path / "metrics"))  # type: ignore[no-untyped-call]
    assert value(parse(files_scrape(tmp_path / "metrics")), IN_USE) == 0

"""The benchmark's smoke run (the real run is `make bench`, outside the suite)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.report import END, START, write_report

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_measures_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.with_suffix(".json").read_text())
    for run in (*results["service"].values(), results["baseline"]):
        assert run["latency"]["errors"] == run["fanout"]["errors"] == run["cost"]["errors"] == 0
        assert 0 < run["latency"]["p50"] <= run["latency"]["p95"]
        assert run["fanout"]["wall"] > run["fanout"]["L"]
        assert run["cost"]["per_second"] > 0
        assert len(run["cost"]["round_cpu_ms"]) == run["cost"]["rounds"] == 2
    assert set(results["service"]) == {"aiohttp", "httpcore"}
    assert results["service"]["aiohttp"]["fanout"]["peak_rss_mb"] > 0
    assert results["service"]["aiohttp"]["cost"]["cpu_ms_per_validation"] > 0
    assert set(results["health"]) == {"/healthz", "/readyz"}
    assert all(rate > 0 for rate in results["health"].values())
    assert results["machine"]["cores"] >= 1
    report = out.read_text()
    assert "## Targets" in report
    assert "SDK baseline" in report


def _results() -> dict[str, Any]:
    run: dict[str, dict[str, Any]] = {
        "latency": {"L": 0.1, "count": 1, "errors": 0, "p50": 0.11, "p95": 0.12},
        "fanout": {"L": 0.5, "count": 2, "errors": 0, "wall": 1.0, "peak_rss_mb": 90.0},
        "cost": {
            "count": 2,
            "rounds": 2,
            "errors": 0,
            "per_second": 100.0,
            "cpu_ms_per_validation": 3.0,
            "round_per_second": [90.0, 110.0],
            "round_cpu_ms": [2.5, 3.5],
        },
    }
    baseline = {**run, "latency": {**run["latency"], "p50": 0.66, "p95": 0.7}}
    return {
        "date": "2026-12-03T00:00:00+00:00",
        "commit": "abc1234",
        "machine": {"cores": 2, "memory_gib": 24, "cpu": "x", "python": "3.11", "kernel": "6"},
        "plan": {
            "latency_l": 0.1,
            "fanout_l": 0.5,
            "fanout_count": 2,
            "cost_count": 2,
            "cost_rounds": 2,
        },
        "service": {"aiohttp": run, "httpcore": run},
        "baseline": baseline,
        "health": {"/healthz": 1000.0, "/readyz": 500.0},
    }


def test_report_replaces_only_the_figures(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(f"# Results\n\nNotes before.\n\n{START}\nold figures\n{END}\n\nNotes after.\n")

    write_report(_results(), path)

    text = path.read_text()
    assert text.startswith("# Results\n\nNotes before.\n\n")
    assert text.endswith(f"{END}\n\nNotes after.\n")
    assert "old figures" not in text
    assert "| latency p50 / L | 1.10 | ≤ 1.15 | yes |" in text
    assert "| latency: baseline p50 / ours | 6.00 | ≥ 5 | yes |" in text
    assert "| service CPU ms / validation | 3.00 | ≤ 2 | **no** |" in text


def test_report_is_created_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    write_report(_results(), path)
    assert path.read_text().count(START) == 1

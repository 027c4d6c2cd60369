"""`bench/RESULTS.md`: the figures of one run, between markers, with the notes kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

START = "<!-- results:start (written by `python -m bench.run`) -->"
END = "<!-- results:end -->"
HEADER = "# Benchmark results\n\n"

# name, value of the run, comparison, target
Check = tuple[str, Callable[[dict[str, Any]], float], str, float]
TARGETS: tuple[Check, ...] = (
    ("latency p50 / L", lambda r: _ours(r)["latency"]["p50"] / _ours(r)["latency"]["L"], "≤", 1.15),
    ("fan-out wall / L", lambda r: _ours(r)["fanout"]["wall"] / _ours(r)["fanout"]["L"], "≤", 3.0),
    ("fan-out errors", lambda r: _ours(r)["fanout"]["errors"], "≤", 0),
    ("fan-out peak RSS (MiB)", lambda r: _ours(r)["fanout"]["peak_rss_mb"], "<", 200),
    ("service CPU ms / validation", lambda r: _ours(r)["cost"]["cpu_ms_per_validation"], "≤", 2.0),
    ("latency: baseline p50 / ours", lambda r: _speedup(r, "latency", "p50"), "≥", 5),
    ("fan-out: baseline wall / ours", lambda r: _speedup(r, "fanout", "wall"), "≥", 20),
)


def _ours(results: dict[str, Any]) -> dict[str, Any]:
    return dict(results["service"]["aiohttp"])


def _speedup(results: dict[str, Any], scenario: str, key: str) -> float:
    return float(results["baseline"][scenario][key] / _ours(results)[scenario][key])


def _holds(value: float, comparison: str, target: float) -> bool:
    return {"≤": value <= target, "<": value < target, "≥": value >= target}[comparison]


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        START,
        f"Run {results['date']} at commit `{results['commit']}` on {m['cores']} cores, "
        f"{m['memory_gib']} GiB ({m['cpu'] or 'unknown CPU'}), Python {m['python']}, "
        f"Linux {m['kernel']}. Service: one worker, Postgres, `LOG_LEVEL=INFO`.",
        "",
        "## Targets",
        "",
        "| figure | this run | target | met |",
        "|---|---:|---:|:-:|",
    ]
    for name, value_of, comparison, target in TARGETS:
        value = value_of(results)
        met = "yes" if _holds(value, comparison, target) else "**no**"
        lines.append(f"| {name} | {value:.2f} | {comparison} {target:g} | {met} |")
    lines += ["", *_scenarios(results), "", *_health(results), END]
    return "\n".join(lines) + "\n"


def _scenarios(results: dict[str, Any]) -> list[str]:
    columns = {"ours (aiohttp)": _ours(results), **_others(results)}
    base = results["baseline"]
    lines = [
        "## Side by side",
        "",
        "| | " + " | ".join(columns) + " | SDK baseline | ours / baseline | better by |",
        "|---|" + "---:|" * (len(columns) + 3),
    ]

    def row(
        label: str, get: Callable[[dict[str, Any]], float], fmt: str, higher_is_better: bool = False
    ) -> None:
        cells = [format(get(c), fmt) for c in columns.values()]
        ours, theirs = get(_ours(results)), get(base)
        ratio = better = ""
        if ours and theirs:
            ratio = f"{ours / theirs:.2f}"
            better = f"{(ours / theirs if higher_is_better else theirs / ours):.1f}x"
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {theirs:{fmt}} | {ratio} | {better} |"
        )

    plan = results["plan"]
    lat, fan = plan["latency_l"], plan["fanout_l"]
    rounds = f"median of {plan['cost_rounds']} rounds of {plan['cost_count']}"
    row(f"1. latency p50 (s), sequential, L = {lat:g} s", lambda c: c["latency"]["p50"], ".3f")
    row("1. latency p95 (s)", lambda c: c["latency"]["p95"], ".3f")
    row("1. latency p50 / L", lambda c: c["latency"]["p50"] / c["latency"]["L"], ".2f")
    row("1. latency errors", lambda c: c["latency"]["errors"], "d")
    fanned = f"{plan['fanout_count']} at once, L = {fan:g} s"
    row(f"2. fan-out wall (s), {fanned}", lambda c: c["fanout"]["wall"], ".2f")
    row("2. fan-out wall / L", lambda c: c["fanout"]["wall"] / c["fanout"]["L"], ".2f")
    row("2. fan-out errors", lambda c: c["fanout"]["errors"], "d")
    row(
        f"3. validations / s, L = 0, {rounds}",
        lambda c: c["cost"]["per_second"],
        ".0f",
        higher_is_better=True,
    )
    row("3. CPU ms / validation", lambda c: c["cost"]["cpu_ms_per_validation"], ".2f")
    row("3. errors, all rounds", lambda c: c["cost"]["errors"], "d")
    spread = " | ".join(_spread(c["cost"]["round_cpu_ms"]) for c in [*columns.values(), base])
    lines.append(f"| 3. CPU ms / validation, each round | {spread} | | |")
    rss = " | ".join(f"{c['fanout']['peak_rss_mb']:.0f}" for c in columns.values())
    lines.append(f"| 2. peak RSS of the service (MiB) | {rss} | n/a | | |")
    return lines


def _spread(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _others(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"httpx default ({k})": v for k, v in results["service"].items() if k != "aiohttp"}


def _health(results: dict[str, Any]) -> list[str]:
    return [
        "## Health endpoints (wrk, 1 thread, 32 connections, one service worker)",
        "",
        "| endpoint | requests / s |",
        "|---|---:|",
        *(f"| `{path}` | {rate:.0f} |" for path, rate in results["health"].items()),
    ]


def write_report(results: dict[str, Any], path: Path) -> None:
    """Replace the figures between the markers; keep the notes around them."""
    text = path.read_text() if path.exists() else HEADER + START + "\n" + END + "\n"
    if START not in text or END not in text:
        text = text.rstrip("\n") + "\n\n" + START + "\n" + END + "\n"
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    path.write_text(before + render(results).rstrip("\n") + after)

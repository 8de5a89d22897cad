"""`bench/run.py --report`: the whole table of docs/PERFORMANCE.md from one invocation.

Ratios first (what the targets are stated in), then each measurement, then how noisy the
machine was: the spread of each target's req/s across rounds ((max - min) / median) and the
load average before and after.
"""

from __future__ import annotations

import statistics
from typing import Any

Results = dict[str, dict[str, dict[str, Any]]]


def _runs(results: Results, target: str, generation: str) -> list[dict[str, Any]]:
    return list(results[target][generation]["runs"])


def _median(results: Results, target: str, generation: str, key: str) -> float:
    return statistics.median(r[key] for r in _runs(results, target, generation))


def ratios(results: Results, generations: list[str]) -> list[str]:
    """The issue 18 targets, one row per generation."""
    lines = [
        "| generation | req/s ÷ fair peer (≥ 2.0×) | p99 ÷ fair peer (≤ 1.0×) "
        "| RSS ÷ fair peer (≤ 1.3×) | req/s ÷ raw ceiling (≥ 0.33) |",
        "|---|---:|---:|---:|---:|",
    ]
    for generation in generations:
        row = [generation]
        for key in ("rps", "p99_us", "rss_kib"):
            ours = _median(results, "gatehouse", generation, key)
            peer = _median(results, "peer", generation, key)
            row.append(f"{ours / peer:.2f}×")
        if "ceiling-raw" in results:
            ours = _median(results, "gatehouse", generation, "rps")
            row.append(f"{ours / _median(results, 'ceiling-raw', generation, 'rps'):.2f}")
        else:
            row.append("–")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def measurements(results: Results, generations: list[str]) -> list[str]:
    lines = [
        "| generation | server | req/s | p50 ms | p99 ms | CPU µs/req | RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for generation in generations:
        for target in results:
            rps, p50, p99, cpu, rss = (
                _median(results, target, generation, k)
                for k in ("rps", "p50_us", "p99_us", "cpu_us_per_request", "rss_kib")
            )
            lines.append(
                f"| {generation} | {target} | {rps:.0f} | {p50 / 1000:.2f} | {p99 / 1000:.2f} "
                f"| {cpu:.0f} | {rss / 1024:.1f} |"
            )
    return lines


def spread(results: Results, generations: list[str]) -> list[str]:
    lines = [
        "| generation | server | rounds | req/s min | req/s max | spread |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for generation in generations:
        for target in results:
            values = [r["rps"] for r in _runs(results, target, generation)]
            middle = statistics.median(values)
            lines.append(
                f"| {generation} | {target} | {len(values)} | {min(values):.0f} "
                f"| {max(values):.0f} | {(max(values) - min(values)) / middle:.0%} |"
            )
    return lines


def token_rows(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| grant | grants | grants/s (≥ 500 for refresh) | p50 ms | p99 ms | server CPU µs/grant |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['grant']} | {r['count']} | {r['per_second']:.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['cpu_us_per_grant']:.0f} |"
        )
    return lines


def signin_rows(measured: Any) -> list[str]:
    import signin_load

    return signin_load.table(measured)


def render(
    results: Results,
    generations: list[str],
    *,
    setup: str,
    tokens: list[dict[str, Any]] | None,
    signin: Any,
    load: tuple[str, str],
) -> str:
    parts = ["### Targets (issue 18)", "", *ratios(results, generations), ""]
    parts += ["### /mcp, each server", "", setup, "", *measurements(results, generations), ""]
    if tokens is not None:
        parts += ["### The token endpoint (PostgreSQL, one worker)", "", *token_rows(tokens), ""]
    if signin is not None:
        parts += ["### /mcp and /health under a sign-in load", "", *signin_rows(signin), ""]
    parts += ["### How noisy the machine was", "", *spread(results, generations), ""]
    parts += [f"Load average (1, 5, 15 min) before: {load[0]}; after: {load[1]}."]
    return "\n".join(parts)

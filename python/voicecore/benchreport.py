"""Summarise a pytest-benchmark JSON report as voicecore-vs-peer tables.

The benchmarks in ``benches/`` put each voicecore measurement in the same pytest-benchmark
group as its peer (audioop, soxr, pipecat) and record ``extra_info["impl"]``; this module
turns such a report into one table per group with the mean and median time per call of
each implementation and how many times faster voicecore is than the peer.

Pure functions only (no I/O), so the rendering is unit-testable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["GroupSummary", "Row", "format_seconds", "render", "summarize"]

VOICECORE = "voicecore"


@dataclass(frozen=True)
class Row:
    """One benchmark: an implementation's timing within a group.

    Attributes:
        impl: Implementation name from ``extra_info["impl"]`` (``"?"`` when absent).
        case: What was measured, from ``extra_info["case"]`` (the test name when absent).
        mean_s: Mean seconds per call.
        median_s: Median seconds per call.
        rounds: Number of timed rounds.
        speedup_median: Peer median / voicecore median (None for voicecore or without one).
        speedup_mean: Peer mean / voicecore mean (None for voicecore or without one).
    """

    impl: str
    case: str
    mean_s: float
    median_s: float
    rounds: int
    speedup_median: float | None = None
    speedup_mean: float | None = None


@dataclass(frozen=True)
class GroupSummary:
    """All rows of one benchmark group, voicecore first.

    Attributes:
        group: The pytest-benchmark group name.
        rows: The group's benchmarks, voicecore first, then peers by name.
    """

    group: str
    rows: tuple[Row, ...]

    @property
    def has_voicecore(self) -> bool:
        """Whether the group holds a voicecore measurement to compare against."""
        return any(row.impl == VOICECORE for row in self.rows)


def _ratio(peer: float, ours: float) -> float | None:
    return peer / ours if ours > 0 and math.isfinite(peer) else None


def summarize(report: Mapping[str, Any]) -> list[GroupSummary]:
    """Groups a pytest-benchmark JSON document's benchmarks and computes peer/voicecore ratios.

    Args:
        report: The parsed ``--benchmark-json`` document (uses ``benchmarks[*].group``,
            ``.name``, ``.extra_info`` and ``.stats.{mean,median,rounds}``).

    Returns:
        One summary per group, ordered by group name (ungrouped benchmarks last, under
        ``"(no group)"``).
    """
    groups: dict[str, list[Row]] = {}
    for bench in report.get("benchmarks", []):
        extra: Mapping[str, Any] = bench.get("extra_info") or {}
        stats: Mapping[str, Any] = bench["stats"]
        group = bench.get("group") or "(no group)"
        groups.setdefault(group, []).append(
            Row(
                impl=str(extra.get("impl", "?")),
                case=str(extra.get("case", bench.get("name", "?"))),
                mean_s=float(stats["mean"]),
                median_s=float(stats["median"]),
                rounds=int(stats.get("rounds", 0)),
            )
        )

    summaries = []
    for group in sorted(groups, key=lambda g: (g == "(no group)", g)):
        rows = groups[group]
        ours = next((row for row in rows if row.impl == VOICECORE), None)
        ordered = sorted(rows, key=lambda row: (row.impl != VOICECORE, row.impl))
        if ours is not None:
            ordered = [
                row
                if row.impl == VOICECORE
                else Row(
                    row.impl,
                    row.case,
                    row.mean_s,
                    row.median_s,
                    row.rounds,
                    speedup_median=_ratio(row.median_s, ours.median_s),
                    speedup_mean=_ratio(row.mean_s, ours.mean_s),
                )
                for row in ordered
            ]
        summaries.append(GroupSummary(group, tuple(ordered)))
    return summaries


def format_seconds(seconds: float) -> str:
    """Formats a duration to 3 significant digits in s, ms, µs or ns (``"586 ns"``, ``"17.9 µs"``)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _speed(ratio: float) -> str:
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


def _verdict(row: Row, group_has_voicecore: bool) -> str:
    if row.impl == VOICECORE:
        return ""
    if not group_has_voicecore:
        return "no voicecore result in this group"
    if row.speedup_median is None:
        return "n/a"
    by_mean = f", {_speed(row.speedup_mean)} by mean" if row.speedup_mean is not None else ""
    return f"voicecore is {_speed(row.speedup_median)} by median{by_mean}"


def _table(header: Sequence[str], body: Sequence[Sequence[str]], *, markdown: bool) -> list[str]:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return lines
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in (header, *body)
    ]


def render(report: Mapping[str, Any], *, markdown: bool = False) -> str:
    """Renders the report as text (one block per group) or as one Markdown table.

    Args:
        report: The parsed ``--benchmark-json`` document.
        markdown: Emit a GitHub-flavoured Markdown table instead of aligned plain text.

    Returns:
        The rendered tables, newline-terminated, then the SIMD kernels voicecore ran where the
        report recorded them (``benches/conftest.py`` does); a one-line note when there are
        no results.
    """
    summaries = summarize(report)
    if not summaries:
        return "No benchmark results (were the benchmarks skipped or deselected?)\n"
    return _tables(summaries, markdown=markdown) + _kernels_note(report)


def _kernels_note(report: Mapping[str, Any]) -> str:
    """A line saying which SIMD kernels voicecore ran, when the report recorded them."""
    machine = report.get("machine_info") or {}
    level, detected = machine.get("voicecore_simd"), machine.get("voicecore_simd_detected")
    if level is None:
        return ""
    lowered = f", lowered by VOICECORE_SIMD from {detected}" if detected not in (None, level) else ""
    return f"\nvoicecore kernels: {level}{lowered}\n"


def _tables(summaries: Sequence[GroupSummary], *, markdown: bool) -> str:
    """The groups as one Markdown table or as aligned plain-text blocks."""
    header = ["impl", "mean", "median", "rounds", "peer / voicecore"]
    if markdown:
        body = [
            [
                s.group,
                row.impl,
                format_seconds(row.mean_s),
                format_seconds(row.median_s),
                str(row.rounds),
                _verdict(row, s.has_voicecore),
            ]
            for s in summaries
            for row in s.rows
        ]
        return "\n".join(_table(["group", *header], body, markdown=True)) + "\n"
    blocks = []
    for s in summaries:
        body = [
            [
                row.impl,
                format_seconds(row.mean_s),
                format_seconds(row.median_s),
                str(row.rounds),
                _verdict(row, s.has_voicecore),
            ]
            for row in s.rows
        ]
        blocks.append("\n".join([s.group, *("  " + line for line in _table(header, body, markdown=False))]))
    return "\n\n".join(blocks) + "\n"

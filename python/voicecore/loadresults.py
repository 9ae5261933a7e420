"""A load test's results folder: report.md, report.json and PNG plots (matplotlib, optional).

The plots put every server's runs on the same axes, by call count: latency percentiles (added
latency where the delays are known), server CPU per call, and server RSS per call. Without
matplotlib (``pip install 'voicecore[bench]'``) the reports are written and the plots skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from voicecore.loadgen import LoadReport

__all__ = ["write_results"]

_MARKERS = ("o", "s", "^", "D")
_STYLES = {50: ":", 95: "-", 99: "--"}
Point = tuple[int, float]


def _by_server(reports: Sequence[LoadReport]) -> dict[str, list[LoadReport]]:
    servers: dict[str, list[LoadReport]] = {}
    for report in reports:
        servers.setdefault(report.target, []).append(report)
    return servers


def _plots(reports: Sequence[LoadReport], folder: Path) -> list[Path]:
    """The PNG plots of ``reports`` in ``folder``; raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = _by_server(reports)
    added = all(report.delays is not None for report in reports)
    key = "added" if added else "latency"
    written = []

    names = list(servers)

    def figure(
        name: str, title: str, ylabel: str, series: Mapping[tuple[str, int | None], list[Point]]
    ) -> None:
        """One plot: a line per (server, percentile); colour by server, line style by percentile."""
        fig, axes = plt.subplots(figsize=(7, 4.5))
        for (server, q), points in series.items():
            if points:
                xs, ys = zip(*points, strict=True)
                label = server if q is None else f"{server} p{q}"
                style = _STYLES.get(q, "-") if q is not None else "-"
                marker = _MARKERS[names.index(server) % len(_MARKERS)]
                axes.plot(xs, ys, style, marker=marker, color=f"C{names.index(server)}", label=label)
        axes.set_xscale("log")
        axes.set_xlabel("concurrent calls")
        axes.set_ylabel(ylabel)
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
        fig.tight_layout()
        path = folder / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    def points(runs: Sequence[LoadReport], field: str) -> list[Point]:
        summaries = [(run.calls, run.summary().get(field)) for run in runs]
        return [(calls, value) for calls, value in summaries if value is not None]

    latency: dict[tuple[str, int | None], list[Point]] = {
        (server, q): points(runs, f"{key}_p{q}_ms") for server, runs in servers.items() for q in (50, 95, 99)
    }
    what = "added latency (measured - known delays)" if added else "end of speech -> first audio"
    figure("latency.png", f"{what} vs calls", "ms", latency)
    cpu: dict[tuple[str, int | None], list[Point]] = {
        (server, None): points(runs, "cpu_per_call_percent") for server, runs in servers.items()
    }
    figure("cpu_per_call.png", "server CPU per call", "% of one core", cpu)
    rss: dict[tuple[str, int | None], list[Point]] = {
        (server, None): points(runs, "rss_per_call_mib") for server, runs in servers.items()
    }
    figure("rss_per_call.png", "server RSS per call ((peak - idle) / calls)", "MiB", rss)
    return written


def write_results(
    folder: Path, reports: Sequence[LoadReport], text: str, held: Mapping[str, int | None] | None = None
) -> tuple[list[Path], str | None]:
    """Write ``text`` (report.md), every run (report.json) and the plots into ``folder``.

    Args:
        folder: Created if missing.
        reports: The runs, any servers.
        text: The Markdown report as printed.
        held: For a ramp, the largest call count that held, per server.

    Returns:
        The files written, and why the plots were skipped (None: they were not).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.md").write_text(text, encoding="utf-8")
    data: dict[str, Any] = {"runs": [report.to_json() for report in reports]}
    if held is not None:
        data["held"] = dict(held)
    (folder / "report.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    written = [folder / "report.md", folder / "report.json"]
    try:
        written += _plots(reports, folder)
    except ImportError:
        return written, "matplotlib is not installed (pip install 'voicecore[bench]'): no plots"
    return written, None

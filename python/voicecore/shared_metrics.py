"""Prometheus metrics for all of ``serve --workers N``: prometheus_client's multiprocess mode.

Each worker process has its own metric values, and a scrape of the shared port reaches one of
them; so the parent makes a fresh folder (:func:`folder`) and names it in
``PROMETHEUS_MULTIPROC_DIR`` while it starts the workers (:func:`inherited`). prometheus_client
reads that variable when it is first imported, so in every worker (started with spawn: a new
interpreter with the parent's environment) the metrics keep their values in files there, and
:func:`exposition` merges the files of all workers. When a worker exits the parent calls
:func:`worker_exited`, which drops its live gauges (calls in progress); its counters stay in
the totals. Without the variable (one process, or the library inside another server) the
default registry is exposed unchanged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, multiprocess

from voicecore.shared_admission import shared_memory

__all__ = ["ENV", "exposition", "folder", "inherited", "worker_exited"]

#: The variable prometheus_client reads (at import) to keep metric values in files.
ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def folder() -> Iterator[Path]:
    """A new, empty folder for the workers' metric files, removed with its files afterwards.

    It is in shared memory where there is one (the files are memory-mapped and written on every
    change) and named after this process: ``voicecore-metrics-<pid>-...``.
    """
    path = Path(tempfile.mkdtemp(prefix=f"voicecore-metrics-{os.getpid()}-", dir=shared_memory()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def inherited(path: Path) -> Iterator[None]:
    """``PROMETHEUS_MULTIPROC_DIR`` set to ``path`` while worker processes are started (they copy it)."""
    before = os.environ.get(ENV)
    os.environ[ENV] = str(path)
    try:
        yield
    finally:
        if before is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = before


def worker_exited(path: Path, pid: int) -> None:
    """Drop the live gauges of the exited worker ``pid`` (its counters stay in the totals)."""
    multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]  # untyped upstream


def exposition() -> bytes:
    """The Prometheus text of every metric: all workers' when they share a folder, else this process's."""
    path = os.environ.get(ENV)
    if not path:
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]  # untyped upstream
    return generate_latest(registry)

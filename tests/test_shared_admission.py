"""One call limit through a file, as ``serve --workers N`` shares it; a dead worker's slots come back."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicecore import shared_admission
from voicecore.errors import ConfigError
from voicecore.shared_admission import SharedAdmission


@pytest.fixture
def calls_file() -> Iterator[Path]:
    path = shared_admission.create()
    yield path
    path.unlink(missing_ok=True)


def test_two_handles_on_one_file_share_the_limit(calls_file: Path) -> None:
    first, second = SharedAdmission(calls_file, 2), SharedAdmission(calls_file, 2)
    assert first.reserve("a", 0.0)
    assert second.admit("b", 0.0)
    assert not second.reserve("c", 0.0)
    assert not first.admit("c", 0.0)
    assert second.admit("a", 1.0)  # the reservation made through the other handle
    assert (first.active, second.load(1.0)) == (2, 2)
    first.release("a")
    assert second.admit("c", 2.0)


def test_draining_is_per_worker(calls_file: Path) -> None:
    first, second = SharedAdmission(calls_file, 5), SharedAdmission(calls_file, 5)
    first.drain()
    assert not first.admit("a", 0.0)
    assert not first.reserve("a", 0.0)
    assert second.admit("a", 0.0)


def test_the_slots_of_a_worker_that_died_are_given_back(calls_file: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    calls_file.write_text(json.dumps({"active": {"a": pid, "b": pid}, "reserved": {}}))
    admission = SharedAdmission(calls_file, 2)
    assert admission.active == 0
    assert admission.admit("c", 0.0)


def test_the_limit_must_be_positive(calls_file: Path) -> None:
    with pytest.raises(ConfigError, match="max_calls"):
        SharedAdmission(calls_file, 0)

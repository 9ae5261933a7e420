"""The metrics folder of ``serve --workers N``: made fresh, named only while workers start, removed."""

from __future__ import annotations

import os

import pytest

from voicecore import shared_metrics


def test_the_folder_is_fresh_and_removed_with_its_files() -> None:
    with shared_metrics.folder() as path:
        assert path.is_dir()
        assert not any(path.iterdir())
        assert path.name.startswith(f"voicecore-metrics-{os.getpid()}-")
        (path / "counter_1.db").write_bytes(b"x")
    assert not path.exists()


@pytest.mark.parametrize("before", [None, "/elsewhere"])
def test_the_variable_is_set_only_while_workers_start(
    before: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if before is None:
        monkeypatch.delenv(shared_metrics.ENV, raising=False)
    else:
        monkeypatch.setenv(shared_metrics.ENV, before)
    with shared_metrics.folder() as path, shared_metrics.inherited(path):
        assert os.environ[shared_metrics.ENV] == str(path)
    assert os.environ.get(shared_metrics.ENV) == before

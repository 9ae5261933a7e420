from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from voicecore import cli


def test_help_lists_bench(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "bench" in capsys.readouterr().out


def test_bench_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--benches", "--json", "--markdown"):
        assert option in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_bench_without_benches_dir_explains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bench"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "benches") in err
    assert "source checkout" in err
    assert "--benches" in err


def test_bench_with_missing_explicit_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--benches", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_bench_runs_pytest_and_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The pytest subprocess is replaced: check its command line and feed back a report.
    benches = tmp_path / "benches"
    benches.mkdir()
    json_path = tmp_path / "out.json"
    seen: list[list[str]] = []

    def fake_run(cmd: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        report: dict[str, Any] = {
            "benchmarks": [
                {
                    "group": "g",
                    "name": "a",
                    "extra_info": {"impl": "voicecore"},
                    "stats": {"mean": 1e-6, "median": 1e-6},
                },
                {
                    "group": "g",
                    "name": "b",
                    "extra_info": {"impl": "audioop"},
                    "stats": {"mean": 4e-6, "median": 3e-6},
                },
            ]
        }
        json_path.write_text(json.dumps(report))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    status = cli.main(["bench", "--benches", str(benches), "--json", str(json_path), "-k", "g711"])
    assert status == 0
    (cmd,) = seen
    assert cmd[:4] == [sys.executable, "-m", "pytest", str(benches)]
    for arg in ("--benchmark-enable", "--benchmark-only", f"--benchmark-json={json_path}", "-q"):
        assert arg in cmd
    assert cmd[-2:] == ["-k", "g711"]
    assert "voicecore is 3.00x faster" in capsys.readouterr().out


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "voicecore", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "bench" in proc.stdout

from __future__ import annotations

import asyncio
import http.server
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests import test_server
from tests.observers.test_report import SECRET, receiving, verify_by_hand
from voicecore import cli
from voicecore import events as ev
from voicecore.caller import TwilioCaller
from voicecore.providers import registry
from voicecore.runtime.loop import run
from voicecore.runtime.session import SessionConfig
from voicecore.sansio.turn import TurnConfig
from voicecore.server import VoiceServer
from voicecore.testing import FakeLLM, FakeSTT, FakeTTS


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


# --- serve ------------------------------------------------------------------------------------


def test_serve_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--agent", "--host", "--port", "--workers", "--max-calls"):
        assert option in out


def test_serve_reports_bad_settings_before_listening(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOICECORE_MAX_CALLS", "many")
    assert cli.main(["serve"]) == 2
    assert "VOICECORE_MAX_CALLS must be a whole number, not 'many'" in capsys.readouterr().err
    monkeypatch.delenv("VOICECORE_MAX_CALLS")
    assert cli.main(["serve", "--workers", "0"]) == 2
    assert "VOICECORE_WORKERS must be at least 1" in capsys.readouterr().err


def test_serve_reports_a_bad_agent_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agent = tmp_path / "agent.toml"
    agent.write_text('instructions = "x"\n[providers]\nstt = "nosuch"\n')
    assert cli.main(["serve", "--agent", str(agent), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "unknown STT provider 'nosuch'" in err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_says_when_its_port_is_taken(workers: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "voicecore", "serve", "--port", str(port), "--workers", workers],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr == (
        f"voicecore serve: cannot listen on 127.0.0.1:{port} (address already in use): "
        "stop what holds the port, or choose another with --port or VOICECORE_PORT\n"
    )
    assert done.stdout == ""  # no banner claims it is serving


def _start_serve(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """Starts ``python -m voicecore serve`` and returns it with the first line of its banner."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicecore", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline()


def _get(url: str, data: bytes | None = None) -> tuple[int, str]:
    with urllib.request.urlopen(url, data=data, timeout=10) as response:
        return response.status, response.read().decode()


def test_serve_listens_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    agent = tmp_path / "shop.toml"
    agent.write_text('instructions = "You sell shoes."\ngreeting = "Shoe shop!"\n')
    proc, first = _start_serve("--agent", str(agent), "--port", "0")
    try:
        assert f"serving {agent} on http://127.0.0.1:" in first
        base = first.split(" on ")[-1].strip()
        assert _get(f"{base}/healthz") == (200, "ok\n")
        status, twiml = _get(f"{base}/twilio/voice", data=b"CallSid=CA1&From=%2B1555")
        assert status == 200
        assert f'<Stream url="{base.replace("http", "ws")}/twilio/stream">' in twiml
        assert "voicecore_active_calls 0.0" in _get(f"{base}/metrics")[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert proc.stdout is not None
    with proc.stdout:
        banner = first + proc.stdout.read()
    default_stt = "fake" if registry.local_extra_missing() else registry.OFFLINE["stt"]
    assert f"stt: {default_stt}" in banner  # the agent file names no providers
    assert "TWILIO_AUTH_TOKEN is not set" in banner


def test_serve_records_each_calls_events_in_the_audit_database(tmp_path: Path) -> None:
    database = tmp_path / "calls.db"
    env = {"VOICECORE_AUDIT_DB": str(database), "VOICECORE_STT": "fake", "VOICECORE_LLM": "fake"}
    env["VOICECORE_TTS"] = "fake"
    proc, first = _start_serve("--port", "0", env=env)
    try:
        base = first.split(" on ")[-1].strip()

        async def place_a_call() -> None:
            caller = TwilioCaller(
                base.replace("http", "ws") + "/twilio/stream", parameters={"From": "+14155550100"}
            )
            async with caller:
                async with asyncio.timeout(20):
                    while not caller.marks:  # noqa: ASYNC110 (the greeting played: the fake's state)
                        await asyncio.sleep(0.05)

        run(place_a_call())
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        if proc.stdout is not None:
            proc.stdout.close()
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT call_id, kind, payload FROM events ORDER BY rowid").fetchall()
    kinds = [kind for _, kind, _ in rows]
    assert kinds[0] == "CallOpened"
    assert kinds[-1] == "CallClosed"
    assert {call_id for call_id, _, _ in rows} == {"CA00000000000000000000000000000001"}
    opened = json.loads(rows[0][2])
    assert opened["call"]["channel"] == "twilio"
    assert opened["call"]["from_number"] != "+14155550100"  # redacted


def test_serve_refuses_an_audit_database_in_a_missing_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOICECORE_AUDIT_DB", str(tmp_path / "nowhere" / "calls.db"))
    assert cli.main(["serve"]) == 2
    assert "VOICECORE_AUDIT_DB: the folder of" in capsys.readouterr().err


def test_serve_with_two_workers_shares_one_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc, first = _start_serve("--port", str(port), "--workers", "2")
    try:
        assert f"on http://127.0.0.1:{port}" in first
        deadline = time.monotonic() + 20
        while True:  # the workers are still importing when the banner appears
            try:
                assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
                break
            except OSError:
                assert time.monotonic() < deadline, "no worker answered"
                time.sleep(0.1)
        assert all(_get(f"http://127.0.0.1:{port}/readyz")[0] == 200 for _ in range(10))
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        if children.exists():  # Linux: the parent runs two worker processes (spawn adds a tracker)
            assert len(children.read_text().split()) >= 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout is not None
        proc.stdout.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening_sockets(port: int) -> int:
    """Sockets listening on ``port`` (Linux's /proc/net/tcp; one per worker with SO_REUSEPORT)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


async def _until(condition: Any, within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (the caller's state; no event to wait on)
            await asyncio.sleep(0.05)


async def _webhook(port: int, call_sid: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/twilio/voice", data={"CallSid": call_sid}) as response,
    ):
        assert response.status == 200
        return await response.text()


async def _one_limit_for_two_workers(port: int) -> None:
    url = f"ws://127.0.0.1:{port}/twilio/stream"
    async with (
        TwilioCaller(url, call_sid="CA1", stream_sid="MZ1") as one,
        TwilioCaller(url, call_sid="CA2", stream_sid="MZ2") as two,
    ):
        await _until(lambda: one.first_audio_at is not None and two.first_audio_at is not None)
        for n in range(6):  # new connections land on either worker: every one is refused
            assert "<Reject" in await _webhook(port, f"CA-busy-{n}")
        for n in range(4):
            async with TwilioCaller(url, call_sid=f"CA-over-{n}", stream_sid=f"MZ-over-{n}") as over:
                assert await over.closed_by_server() == 1013
        assert not one.closed
        assert not two.closed
        await one.hang_up()
        answers: list[str] = []

        async def answered() -> bool:
            answers.append(await _webhook(port, "CA9"))
            return "<Connect>" in answers[-1]

        async with asyncio.timeout(10):
            while not await answered():  # noqa: ASYNC110 (polls the server over HTTP)
                await asyncio.sleep(0.1)
        assert "<Reject" not in answers[-1]
        async with TwilioCaller(url, call_sid="CA9", stream_sid="MZ9") as again:  # its reservation
            await _until(lambda: again.first_audio_at is not None)
            assert not again.closed


def test_serve_reports_a_call_cut_by_shutdown_before_it_exits() -> None:
    fakes = {f"VOICECORE_{role}": "fake" for role in ("STT", "LLM", "TTS")}
    with receiving() as receiver:
        env = fakes | {
            "VOICECORE_REPORT_URL": receiver.url,
            "VOICECORE_REPORT_SECRET": SECRET,
            "VOICECORE_DRAIN_TIMEOUT": "0",
        }
        proc, first = _start_serve("--port", "0", env=env)
        try:
            url = first.split(" on ")[-1].strip().replace("http://", "ws://") + "/twilio/stream"

            async def call_until_shutdown() -> None:
                async with TwilioCaller(url, call_sid="CA5", parameters={"account": "42"}) as call:
                    await _until(lambda: len(call.marks) >= 1)  # the greeting, heard
                    proc.send_signal(signal.SIGTERM)  # in the middle of the call
                    await _until(lambda: call.closed)

            run(call_until_shutdown())
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            assert proc.stdout is not None
            proc.stdout.close()
        assert len(receiver.received) == 1  # delivered before the process exited
    report = verify_by_hand(receiver.received[0])
    assert report["call_id"] == "CA5"
    assert report["call"]["parameters"] == {"account": "42"}  # type: ignore[index]
    assert report["transcript"][0]["role"] == "agent"  # type: ignore[index]
    assert report["reason"] == "server shutting down"


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="counts listening sockets in /proc")
def test_two_workers_share_one_call_limit() -> None:
    port = _free_port()
    fakes = {f"VOICECORE_{role}": "fake" for role in ("STT", "LLM", "TTS")}
    proc, _ = _start_serve("--port", str(port), "--workers", "2", "--max-calls", "2", env=fakes)
    try:
        deadline = time.monotonic() + 30
        while _listening_sockets(port) < 2:  # both workers have bound the port
            assert proc.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "the workers did not both start"
            time.sleep(0.1)
        run(_one_limit_for_two_workers(port))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout is not None
        proc.stdout.close()


async def _scrape(port: int) -> dict[str, float]:
    """One ``/metrics`` answer on a new connection (so on either worker): sample name to value."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def _per_worker(folder: Path, sample_name: str) -> dict[int, float]:
    """``sample_name``'s value in each process's metric file (prometheus_client multiprocess mode)."""
    values: dict[int, float] = {}
    for path in folder.glob("*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for family in MultiProcessCollector.merge([str(path)]):  # type: ignore[no-untyped-call]
            for sample in family.samples:
                if sample.name == sample_name:
                    values[pid] = values.get(pid, 0.0) + sample.value
    return values


async def _metrics_of_two_workers(port: int, folder: Path) -> None:
    url = f"ws://127.0.0.1:{port}/twilio/stream"
    async with TwilioCaller(url, call_sid="CA1", stream_sid="MZ1") as call:
        await _until(lambda: call.first_audio_at is not None)
        refused = 0
        while 0 in _per_worker(folder, "voicecore_refused_calls_total").values():  # until both have
            assert refused < 200, "every webhook reached the same worker"
            assert "<Reject" in await _webhook(port, f"CA-busy-{refused}")
            refused += 1
        per_worker = _per_worker(folder, "voicecore_refused_calls_total")
        assert len(per_worker) == 2
        assert sum(per_worker.values()) == refused
        assert all(count < refused for count in per_worker.values())  # neither saw them all
        for _ in range(10):  # each scrape reaches either worker and reports the whole server
            scraped = await _scrape(port)
            assert scraped["voicecore_refused_calls_total"] == refused
            assert scraped["voicecore_calls_total"] == 1
            assert scraped["voicecore_active_calls"] == 1
        (holder,) = (pid for pid, n in _per_worker(folder, "voicecore_active_calls").items() if n == 1)
        os.kill(holder, signal.SIGKILL)  # the worker with the call dies: its call no longer counts
        await _until(lambda: call.closed)
    async with asyncio.timeout(20):  # until the parent has seen the worker exit
        while (await _scrape(port))["voicecore_active_calls"] != 0:  # noqa: ASYNC110 (polls over HTTP)
            await asyncio.sleep(0.05)
    scraped = await _scrape(port)
    assert scraped["voicecore_refused_calls_total"] == refused  # the dead worker's count stays
    assert scraped["voicecore_calls_total"] == 1


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="counts listening sockets in /proc")
def test_two_workers_report_the_metrics_of_the_whole_server(tmp_path: Path) -> None:
    port = _free_port()
    env = {f"VOICECORE_{role}": "fake" for role in ("STT", "LLM", "TTS")} | {"TMPDIR": str(tmp_path)}
    proc, _ = _start_serve("--port", str(port), "--workers", "2", "--max-calls", "1", env=env)
    try:
        deadline = time.monotonic() + 30
        while _listening_sockets(port) < 2:  # both workers have bound the port
            assert proc.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "the workers did not both start"
            time.sleep(0.1)
        shm = Path("/dev/shm")
        (folder,) = (shm if shm.is_dir() else tmp_path).glob(f"voicecore-metrics-{proc.pid}-*")
        run(asyncio.wait_for(_metrics_of_two_workers(port, folder), 60))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()
    assert not folder.exists()  # removed when serve stops


# --- call -------------------------------------------------------------------------------------


def test_call_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["call", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--url", "--wav", "--say", "--out", "--barge-in"):
        assert option in out


@pytest.mark.skipif(
    registry.local_extra_missing() is not None or shutil.which("espeak-ng") is None,
    reason="needs the local extra (PocketSphinx, eSpeak NG) and espeak-ng for the caller",
)
def test_call_prints_the_transcript_of_a_call_to_the_offline_agent() -> None:
    port = _free_port()
    proc, _ = _start_serve("--port", str(port))  # the built-in front desk: eSpeak NG speaks
    try:
        deadline = time.monotonic() + 30
        while _listening_sockets(port) < 1:
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        url = f"ws://127.0.0.1:{port}/twilio/stream"
        command = [sys.executable, "-m", "voicecore", "call", "--url", url, "--say", "When are you open?"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    lines = done.stdout.splitlines()
    assert lines[0].startswith("greeting: first agent audio")
    assert lines[1].startswith("  agent: ")
    assert lines[2].startswith("turn 1: you spoke")
    assert lines[3] == "  you: When are you open?"
    assert lines[4].startswith("  agent: ")
    # PocketSphinx hears eSpeak NG's voice over a phone line badly (see the README's figures):
    # the words are checked to have been recognised from the greeting's audio, not to be right.
    assert lines[1] != "  agent: (no words recognised)"
    assert "not shown" not in done.stdout


def test_without_the_local_extra_call_says_how_to_get_the_agents_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "local_extra_missing", lambda: "pocketsphinx not installed")
    assert cli._agent_words(TwilioCaller("ws://127.0.0.1:1/twilio/stream")) is None


def test_call_gives_the_server_the_calls_parameters(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for role, make in (
        ("stt", lambda keys, options: FakeSTT([], latency=0.05)),
        ("llm", lambda keys, options: FakeLLM([])),
        ("tts", lambda keys, options: FakeTTS(first_byte=0.02, ms_per_char=5.0)),
    ):
        monkeypatch.setitem(registry.PROVIDERS, (role, "test"), registry.ProviderEntry(role, "test", make))
    agent = SessionConfig(instructions="x", turn=TurnConfig(greeting="Hi {{first_name}}, {{plan|no}} plan."))
    said: list[object] = []

    class Recorder:
        def on_event(self, event: object) -> None:
            said.append(event)

        def close(self) -> None:
            pass

    async def main() -> None:
        server = VoiceServer(test_server.config(), agent, test_server.TEST_PROVIDERS, observers=[Recorder()])
        await server.start()
        try:
            url = f"ws://127.0.0.1:{server.port}/twilio/stream"
            argv = ["call", "--url", url, "--param", "first_name=Ana", "--param", "plan=", "--settle", "0.2"]
            assert await asyncio.to_thread(cli.main, argv) == 0
        finally:
            await server.shutdown(drain_timeout=0)

    run(main())
    opened = next(event for event in said if isinstance(event, ev.CallOpened))
    assert opened.call.parameters == {"first_name": "Ana", "plan": ""}
    assert [event.text for event in said if isinstance(event, ev.AgentSaid)] == ["Hi Ana, no plan."]
    assert cli.main(["call", "--param", "first_name"]) == 2
    assert "voicecore call: --param takes NAME=VALUE, not 'first_name'" in capsys.readouterr().err


def test_call_rejects_a_file_that_is_not_a_wav(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "speech.wav"
    bad.write_bytes(b"not a wav")
    assert cli.main(["call", "--wav", str(bad)]) == 2
    assert "not a WAV file" in capsys.readouterr().err


def test_call_says_when_no_server_answers(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    assert cli.main(["call", "--url", f"ws://127.0.0.1:{port}/twilio/stream"]) == 1
    assert "is `python -m voicecore serve` running?" in capsys.readouterr().err


def test_call_says_when_the_url_is_not_a_media_streams_websocket(capsys: pytest.CaptureFixture[str]) -> None:
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page) as page:
        threading.Thread(target=page.serve_forever, daemon=True).start()
        url = f"ws://127.0.0.1:{page.server_address[1]}"
        try:
            assert cli.main(["call", "--url", url, "--settle", "0.1"]) == 1
        finally:
            page.shutdown()
    assert capsys.readouterr().err == (
        f"voicecore call: {url} answered HTTP 200 but is not a Media Streams WebSocket; "
        "a voicecore server's is ws://HOST:PORT/twilio/stream\n"
    )

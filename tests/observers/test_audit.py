from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from voicecore.errors import ConfigError
from voicecore.observers import Observer
from voicecore.observers.audit import AuditObserver


@dataclass(frozen=True)
class TranscriptFinal:
    call_id: str
    at: float
    text: str
    words: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ToolCalled:
    call_id: str
    at: float
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class NoIds:
    value: int


@dataclass(frozen=True)
class OddAt:
    call_id: int
    at: object


@dataclass(frozen=True)
class Numbered:
    call_id: str
    at: float
    n: int


def rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, call_id, at, kind, payload FROM events ORDER BY id").fetchall()


def test_is_an_observer(tmp_path: Path) -> None:
    with AuditObserver(tmp_path / "audit.db") as audit:
        assert isinstance(audit, Observer)


def test_events_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    audit = AuditObserver(path)
    audit.on_event(TranscriptFinal("CA1", 1.5, "hello", ["hello"]))
    audit.on_event(NoIds(7))
    audit.close()
    with AuditObserver(str(path)) as again:
        again.on_event(ToolCalled("CA2", 2.0, "weather", {"city": "Oslo"}))
    assert rows(path) == [
        (1, "CA1", 1.5, "TranscriptFinal", '{"call_id":"CA1","at":1.5,"text":"hello","words":["hello"]}'),
        (2, None, None, "NoIds", '{"value":7}'),
        (
            3,
            "CA2",
            2.0,
            "ToolCalled",
            '{"call_id":"CA2","at":2.0,"name":"weather","arguments":{"city":"Oslo"}}',
        ),
    ]
    assert audit.dropped == 0


def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    AuditObserver(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        columns = [(c[1], c[2]) for c in conn.execute("PRAGMA table_info(events)")]
    assert columns == [
        ("id", "INTEGER"),
        ("call_id", "TEXT"),
        ("at", "REAL"),
        ("kind", "TEXT"),
        ("payload", "TEXT"),
    ]


def test_pii_is_redacted_in_payloads(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    event = ToolCalled(
        "CA1",
        1.0,
        "pay",
        {"card": "4111 1111 1111 1111", "email": "jane@example.com", "note": ["call 415-555-2671"]},
    )
    with AuditObserver(path) as audit:
        audit.on_event(event)
        audit.on_event(TranscriptFinal("CA1", 2.0, "my ssn is 123-45-6789"))
    payloads = [json.loads(row[4]) for row in rows(path)]
    assert payloads[0]["arguments"] == {"card": "[CARD]", "email": "[EMAIL]", "note": ["call [PHONE]"]}
    assert payloads[1]["text"] == "my ssn is [SSN]"


def test_redaction_can_be_switched_off(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditObserver(path, redact=False) as audit:
        audit.on_event(TranscriptFinal("CA1", 2.0, "my ssn is 123-45-6789"))
    assert json.loads(rows(path)[0][4])["text"] == "my ssn is 123-45-6789"


class Opaque:
    def __str__(self) -> str:
        return "Opaque(jane@example.com)"

    __repr__ = __str__


@dataclass(frozen=True)
class HoldsOpaque:
    thing: Opaque
    raw: bytes


def test_odd_events_and_values_are_still_recorded(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditObserver(path) as audit:
        audit.on_event(OddAt(42, "yesterday"))
        audit.on_event(OddAt(43, True))
        audit.on_event(HoldsOpaque(Opaque(), b"\x00\x01"))
        audit.on_event({"call_id": "x", "email": "a@b.co"})
        audit.on_event(Opaque())
    assert [row[1:] for row in rows(path)] == [
        ("42", None, "OddAt", '{"call_id":42,"at":"yesterday"}'),
        ("43", None, "OddAt", '{"call_id":43,"at":true}'),
        (None, None, "HoldsOpaque", '{"thing":"Opaque([EMAIL])","raw":"AAE="}'),
        (None, None, "dict", '{"call_id":"x","email":"[EMAIL]"}'),
        (None, None, "Opaque", '{"repr":"Opaque([EMAIL])"}'),
    ]


def test_on_event_from_many_threads(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    threads, per_thread = 8, 250
    with AuditObserver(path, flush_interval=0.01) as audit:
        barrier = threading.Barrier(threads)

        def produce(t: int) -> None:
            barrier.wait()
            for n in range(per_thread):
                audit.on_event(Numbered(f"T{t}", 0.0, n))

        workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    seen = [(row[1], json.loads(row[4])["n"]) for row in rows(path)]
    assert sorted(seen) == sorted((f"T{t}", n) for t in range(threads) for n in range(per_thread))
    for t in range(threads):  # each thread's events keep their order
        assert [n for c, n in seen if c == f"T{t}"] == list(range(per_thread))


def block_writes(
    audit: AuditObserver, monkeypatch: pytest.MonkeyPatch
) -> tuple[threading.Event, threading.Event]:
    """Make the writer's next write wait for `release`; `entered` is set once it waits."""
    entered, release = threading.Event(), threading.Event()
    real_write = audit._write

    def slow_write(batch: list[Any]) -> bool:
        entered.set()
        release.wait()
        return real_write(batch)

    monkeypatch.setattr(audit, "_write", slow_write)
    return entered, release


def test_on_event_does_not_wait_for_a_slow_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.db"
    audit = AuditObserver(path, flush_interval=0.01)
    entered, release = block_writes(audit, monkeypatch)
    audit.on_event(Numbered("CA", 0.0, 0))
    assert entered.wait(10)  # the writer is now stuck in a write
    producer = threading.Thread(
        target=lambda: [audit.on_event(Numbered("CA", 0.0, n)) for n in range(1, 1001)]
    )
    producer.start()
    producer.join(10)
    stuck = producer.is_alive()
    release.set()
    audit.close()
    assert not stuck, "on_event waited for the writer"
    assert [json.loads(row[4])["n"] for row in rows(path)] == list(range(1001))


def test_full_queue_drops_and_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.db"
    audit = AuditObserver(path, flush_interval=0.01, max_queue=1)
    entered, release = block_writes(audit, monkeypatch)
    audit.on_event(Numbered("CA", 0.0, 0))
    assert entered.wait(10)
    for n in range(1, 5):  # one fits in the queue, three do not
        audit.on_event(Numbered("CA", 0.0, n))
    assert audit.dropped == 3
    release.set()
    audit.close()
    assert [json.loads(row[4])["n"] for row in rows(path)] == [0, 1]


def test_close_is_idempotent_and_later_events_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    audit = AuditObserver(path)
    audit.on_event(NoIds(1))
    audit.close()
    audit.close()
    audit.on_event(NoIds(2))
    assert audit.dropped == 1
    assert len(rows(path)) == 1


def test_aclose_drains_from_async_code(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"

    async def main() -> None:
        audit = AuditObserver(path, flush_interval=60)
        for n in range(100):
            audit.on_event(NoIds(n))
        await audit.aclose()

    asyncio.run(main())
    assert len(rows(path)) == 100


CRASH = """
import os, sqlite3, sys, time
from dataclasses import dataclass
from voicecore.observers.audit import AuditObserver

@dataclass(frozen=True)
class Ev:
    call_id: str
    at: float
    n: int

path = sys.argv[1]
audit = AuditObserver(path, flush_interval=0.05)
for n in range(200):
    audit.on_event(Ev("CA1", float(n), n))
# Wait (at most 10 s) until another connection sees every row: they were committed without close().
reader = sqlite3.connect(path)
deadline = time.monotonic() + 10
while reader.execute("SELECT count(*) FROM events").fetchone()[0] < 200 and time.monotonic() < deadline:
    time.sleep(0.01)
os._exit(3)  # crash: no close(), no atexit, no checkpoint
"""


def test_committed_rows_survive_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASH), str(path)], timeout=60, check=False)
    assert done.returncode == 3
    assert [row[2] for row in rows(path)] == [float(n) for n in range(200)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flush_interval": 0}, "flush_interval must be a positive number"),
        ({"flush_interval": -1.0}, "flush_interval must be a positive number"),
        ({"flush_interval": float("inf")}, "flush_interval must be a positive number"),
        ({"flush_interval": float("nan")}, "flush_interval must be a positive number"),
        ({"max_queue": 0}, "max_queue must be a positive integer"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AuditObserver(tmp_path / "audit.db", **kwargs)


def test_unopenable_database_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open the audit database"):
        AuditObserver(tmp_path / "missing-dir" / "audit.db")

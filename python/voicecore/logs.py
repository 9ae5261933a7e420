"""Log records that say which call they belong to, and the server's log output.

:func:`call_scope` sets the call of the current asyncio task (a :mod:`contextvars` variable,
so the tasks it starts, the session's included, inherit it). A log-record factory, installed
once on import, copies it into every record as the attributes ``call_id``, ``stream_sid`` and
``transport`` (``None`` outside a call), whichever handler or formatter reads them
(:func:`install_call_fields`, which every session and :func:`configure` call). It wraps the
factory that was there, so it composes with :func:`voicecore.redact.install_log_redaction`
(which the session installs over it).

:func:`configure` is the one place ``serve`` sets up logging: ``text`` (people: time, level,
logger, ``[call …]`` and the message) or ``json`` (one object a line for log collectors, the
call's fields as keys), chosen with ``VOICECORE_LOG_FORMAT``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import msgspec

__all__ = [
    "FORMATS",
    "CallFields",
    "JsonFormatter",
    "TextFormatter",
    "call_scope",
    "configure",
    "install_call_fields",
]

LogFormat = Literal["text", "json"]
#: The values ``VOICECORE_LOG_FORMAT`` takes.
FORMATS: tuple[LogFormat, ...] = ("text", "json")


@dataclass(frozen=True, slots=True)
class CallFields:
    """Which call a log record belongs to.

    Attributes:
        call_id: The call's id (Twilio's call sid, or ``WS…`` for a browser).
        transport: ``twilio`` or ``browser``.
        stream_sid: The Media Stream's id (Twilio only).
    """

    call_id: str
    transport: str
    stream_sid: str | None = None


_CALL: ContextVar[CallFields | None] = ContextVar("voicecore_call", default=None)


@contextmanager
def call_scope(fields: CallFields) -> Iterator[None]:
    """Records logged in this task, and in the tasks it starts, carry ``fields``."""
    token = _CALL.set(fields)
    try:
        yield
    finally:
        _CALL.reset(token)


class _CallRecords:
    """A log-record factory adding the current call's fields to every record."""

    def __init__(self, base: Callable[..., logging.LogRecord]) -> None:
        self.base = base

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.base(*args, **kwargs)
        fields = _CALL.get()
        record.call_id = fields.call_id if fields else None
        record.stream_sid = fields.stream_sid if fields else None
        record.transport = fields.transport if fields else None
        return record


def install_call_fields() -> None:
    """Give every log record the current call's fields (once per process; later calls do nothing)."""
    factory: Any = logging.getLogRecordFactory()
    while factory is not None:  # already somewhere in the chain of wrapping factories
        if isinstance(factory, _CallRecords):
            return
        factory = getattr(factory, "base", None)
    logging.setLogRecordFactory(_CallRecords(logging.getLogRecordFactory()))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [call CA…]: message`` (the call part only for a call's records)."""

    def __init__(self, prefix: str = "") -> None:
        super().__init__("%(asctime)s " + prefix + "%(levelname)s %(name)s%(call)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        """The line, with the record's call (if any) after the logger's name."""
        call_id = getattr(record, "call_id", None)
        record.call = f" [call {call_id}]" if call_id else ""
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the call's fields, the traceback."""

    def __init__(self, extra: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.extra = dict(extra or {})
        self._encoder = msgspec.json.Encoder()

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object (fields that are ``None`` are left out)."""
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self.extra,
        }
        for name in ("call_id", "stream_sid", "transport"):
            if (value := getattr(record, name, None)) is not None:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return self._encoder.encode(data).decode()


def configure(
    fmt: LogFormat = "text", *, worker: int | None = None, stream: TextIO | None = None
) -> logging.Handler:
    """Send INFO and above to ``stream`` (stderr) in ``fmt``; replaces the root's handlers.

    Args:
        fmt: ``text`` for people, ``json`` for log collectors.
        worker: The worker process's number, shown on each line (``serve --workers N``).
        stream: Where to write (default: stderr).

    Returns:
        The handler installed.
    """
    install_call_fields()
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter({} if worker is None else {"worker": worker}))
    else:
        handler.setFormatter(TextFormatter("" if worker is None else f"worker-{worker} "))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler

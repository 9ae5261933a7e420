r"""Incremental server-sent-events parser (the WHATWG ``text/event-stream`` format).

Feed it the response body in whatever pieces the network delivers;
:meth:`SSEParser.receive_data` returns the events completed so far. It follows the
specification: UTF-8 (a leading BOM is dropped, a character split across pieces is joined),
lines end with CRLF, LF or CR (even when CR and LF arrive in different pieces), ``:``
starts a comment, ``data`` lines join with ``\\n``, an event is dispatched at a blank line
and only if it has data, and an unfinished event at the end of the stream is dropped.

Some servers add fields of their own (llama.cpp sends ``error: {...}`` instead of
``data:``); name them in ``extra_data_fields`` and they are read like ``data``, with the
field name as the event type.
"""

from __future__ import annotations

import codecs
from collections.abc import Collection
from dataclasses import dataclass

__all__ = ["SSEParser", "ServerSentEvent"]


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    r"""One dispatched event.

    Attributes:
        data: The event's data lines joined by ``\\n``.
        event: The event type (``"message"`` unless an ``event`` field set another).
        id: The last event id seen on the stream, if any.
        retry: The reconnection time the server asked for, in ms, if it sent one.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Turns ``text/event-stream`` bytes, in any chunking, into :class:`ServerSentEvent`."""

    def __init__(self, *, extra_data_fields: Collection[str] = ()) -> None:
        """``extra_data_fields``: non-standard fields to read as data (see the module doc)."""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._extra = frozenset(extra_data_fields)
        self._buffer = ""
        self._started = False
        self._skip_lf = False  # the previous piece ended with CR: a leading LF belongs to it
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        self.comments = 0
        """How many comment lines arrived (servers send them as keep-alives)."""

    def receive_data(self, data: bytes) -> list[ServerSentEvent]:
        """Parse the next piece of the body; returns the events it completed."""
        return self._receive_text(self._decoder.decode(data))

    def receive_eof(self) -> list[ServerSentEvent]:
        """The body ended: parse what is left; an event without its blank line is dropped."""
        events = self._receive_text(self._decoder.decode(b"", final=True))
        if self._buffer:  # a last line without a line ending still counts as a line
            line, self._buffer = self._buffer, ""
            events += self._line(line)
        self._data, self._event = [], ""
        return events

    def _receive_text(self, text: str) -> list[ServerSentEvent]:
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._skip_lf and text.startswith("\n"):
            text = text[1:]
        self._skip_lf = False
        buffer = self._buffer + text
        events: list[ServerSentEvent] = []
        start = 0
        length = len(buffer)
        while start < length:
            cr = buffer.find("\r", start)
            lf = buffer.find("\n", start)
            if cr == -1 and lf == -1:
                break
            end = lf if cr == -1 else cr if lf == -1 else min(cr, lf)
            events += self._line(buffer[start:end])
            if buffer[end] == "\r":
                if end + 1 < length:
                    end += buffer[end + 1] == "\n"
                else:
                    self._skip_lf = True
            start = end + 1
        self._buffer = buffer[start:]
        return events

    def _line(self, line: str) -> list[ServerSentEvent]:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return []
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name in self._extra:
            self._data.append(value)
            self._event = name
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return []

    def _dispatch(self) -> list[ServerSentEvent]:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return []
        return [ServerSentEvent("\n".join(data), event or "message", self._last_id, self._retry)]

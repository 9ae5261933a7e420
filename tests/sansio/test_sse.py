"""The SSE parser follows the WHATWG event-stream rules whatever the chunking."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voicecore.sansio.sse import ServerSentEvent, SSEParser


def parse(*pieces: bytes, **kwargs: object) -> list[ServerSentEvent]:
    parser = SSEParser(**kwargs)  # type: ignore[arg-type]
    events = []
    for piece in pieces:
        events += parser.receive_data(piece)
    return events + parser.receive_eof()


def test_data_events_end_at_a_blank_line() -> None:
    assert parse(b"data: one\n\ndata: two\n\n") == [ServerSentEvent("one"), ServerSentEvent("two")]


def test_crlf_and_cr_line_endings_are_lines_too() -> None:
    assert parse(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n") == [
        ServerSentEvent("a"),
        ServerSentEvent("b"),
        ServerSentEvent("c"),
    ]


def test_a_crlf_split_between_pieces_is_one_line_ending() -> None:
    # If the LF after a CR were read as a second line ending, "a" would dispatch early.
    assert parse(b"data: a\r", b"\ndata: b\r\n\r\n") == [ServerSentEvent("a\nb")]


def test_multi_line_data_joins_with_newlines() -> None:
    assert parse(b"data: first\ndata: second\ndata:third\n\n") == [ServerSentEvent("first\nsecond\nthird")]


def test_comments_are_counted_and_skipped() -> None:
    parser = SSEParser()
    assert parser.receive_data(b": keep-alive\n\n:ping\ndata: x\n\n") == [ServerSentEvent("x")]
    assert parser.comments == 2


def test_event_id_and_retry_fields() -> None:
    events = parse(b"event: update\nid: 7\nretry: 1500\ndata: x\n\ndata: y\n\n")
    assert events == [ServerSentEvent("x", "update", "7", 1500), ServerSentEvent("y", "message", "7", 1500)]


def test_bad_retry_and_ids_with_nul_are_ignored() -> None:
    assert parse(b"retry: soon\nid: a\x00b\ndata: x\n\n") == [ServerSentEvent("x")]


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert parse(b"data:  two spaces\n\n") == [ServerSentEvent(" two spaces")]


def test_a_field_without_colon_has_an_empty_value() -> None:
    assert parse(b"data\ndata\n\n") == [ServerSentEvent("\n")]


def test_an_event_without_data_is_not_dispatched() -> None:
    assert parse(b"event: ping\n\nid: 3\n\n") == []


def test_unknown_fields_are_ignored_unless_named_as_data() -> None:
    stream = b'error: {"code": 500}\n\n'
    assert parse(stream) == []
    assert parse(stream, extra_data_fields=("error",)) == [ServerSentEvent('{"code": 500}', "error")]


def test_an_unfinished_event_at_the_end_is_dropped() -> None:
    assert parse(b"data: complete\n\ndata: cut off") == [ServerSentEvent("complete")]


def test_a_leading_bom_is_dropped_and_utf8_split_across_pieces_is_joined() -> None:
    data = "\ufeffdata: café ☕\n\n".encode()
    cut = data.index("☕".encode()) + 1
    assert parse(data[:cut], data[cut:]) == [ServerSentEvent("café ☕")]


lines = st.lists(
    st.one_of(
        st.text(alphabet="abc é:☕ ", max_size=12).map(lambda t: "data: " + t),
        st.just(": comment"),
        st.just("event: e"),
        st.just("id: 1"),
        st.just(""),
    ),
    max_size=20,
)


@given(lines, st.sampled_from(["\n", "\r\n", "\r"]), st.data())
def test_any_chunking_gives_the_same_events(body: list[str], newline: str, data: st.DataObject) -> None:
    stream = (newline.join(body) + newline + newline).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert parse(*pieces) == parse(stream)
    assert parse(*(stream[i : i + 1] for i in range(len(stream)))) == parse(stream)

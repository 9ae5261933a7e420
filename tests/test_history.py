from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicecore.errors import ConfigError, HistoryError
from voicecore.history import MESSAGE_OVERHEAD_TOKENS, History, approx_tokens

Op = tuple[Any, ...]


def one_token(message: Mapping[str, Any]) -> int:
    """Every message costs one token, so a budget counts messages."""
    return 1


def call(call_id: str, name: str = "lookup", arguments: str = "{}") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def apply(history: History, ops: list[Op]) -> None:
    for op, *args in ops:
        if op == "user":
            history.add_user(args[0])
        elif op == "assistant":
            text, *ids = args
            history.add_assistant(text, [call(i) for i in ids] or None)
        elif op == "tool":
            history.add_tool_result(args[0], args[1])
        elif op == "replace":
            history.replace_last_assistant(args[0])
        else:
            raise AssertionError(op)


def short(messages: list[dict[str, Any]]) -> list[str]:
    """S:system, U:text, A:text[call ids], T:call id=content."""
    out = []
    for m in messages:
        role = m["role"]
        if role == "tool":
            out.append(f"T:{m['tool_call_id']}={m['content']}")
        elif role == "assistant" and "tool_calls" in m:
            ids = ",".join(c["id"] for c in m["tool_calls"])
            out.append(f"A:{m['content'] or ''}[{ids}]")
        else:
            out.append(f"{role[0].upper()}:{m['content']}")
    return out


TWO_TURNS_AND_A_QUESTION: list[Op] = [
    ("user", "u1"),
    ("assistant", "a1"),
    ("user", "u2"),
    ("assistant", "a2"),
    ("user", "u3"),
]

TOOL_TURN: list[Op] = [
    ("user", "u1"),
    ("assistant", "", "c1", "c2"),
    ("tool", "c1", "r1"),
    ("tool", "c2", "r2"),
    ("assistant", "a1"),
    ("user", "u2"),
]

TOOL_LOOP: list[Op] = [
    ("user", "u1"),
    ("assistant", "a1"),
    ("user", "u2"),
    ("assistant", "checking", "c1"),
    ("tool", "c1", "r1"),
    ("assistant", "", "c2"),
    ("tool", "c2", "r2"),
]

# (case, operations, max_tokens with one token per message, expected view)
TRIM_CASES: list[tuple[str, list[Op], int, list[str]]] = [
    ("everything fits", TWO_TURNS_AND_A_QUESTION, 6, ["S:sys", "U:u1", "A:a1", "U:u2", "A:a2", "U:u3"]),
    ("oldest turn dropped first", TWO_TURNS_AND_A_QUESTION, 5, ["S:sys", "U:u2", "A:a2", "U:u3"]),
    ("a turn that does not fit is dropped whole", TWO_TURNS_AND_A_QUESTION, 3, ["S:sys", "U:u3"]),
    ("newest user kept over budget", TWO_TURNS_AND_A_QUESTION, 1, ["S:sys", "U:u3"]),
    ("no user message yet: greeting kept", [("assistant", "hello")], 2, ["S:sys", "A:hello"]),
    ("no user message yet: greeting over budget", [("assistant", "hello")], 1, ["S:sys"]),
    (
        "greeting is the oldest turn",
        [("assistant", "hello"), *TWO_TURNS_AND_A_QUESTION],
        7,
        ["S:sys", "A:hello", "U:u1", "A:a1", "U:u2", "A:a2", "U:u3"],
    ),
    (
        "greeting is dropped first",
        [("assistant", "hello"), *TWO_TURNS_AND_A_QUESTION],
        6,
        ["S:sys", "U:u1", "A:a1", "U:u2", "A:a2", "U:u3"],
    ),
    (
        "tool calls and results kept together",
        TOOL_TURN,
        7,
        ["S:sys", "U:u1", "A:[c1,c2]", "T:c1=r1", "T:c2=r2", "A:a1", "U:u2"],
    ),
    ("tool calls and results dropped together", TOOL_TURN, 6, ["S:sys", "U:u2"]),
    (
        "current tool loop kept whole",
        TOOL_LOOP,
        8,
        ["S:sys", "U:u1", "A:a1", "U:u2", "A:checking[c1]", "T:c1=r1", "A:[c2]", "T:c2=r2"],
    ),
    (
        "current tool loop drops its oldest step first, and older turns with it",
        TOOL_LOOP,
        5,
        ["S:sys", "U:u2", "A:[c2]", "T:c2=r2"],
    ),
    ("current tool step never split from its results", TOOL_LOOP, 3, ["S:sys", "U:u2"]),
    (
        "a call without a result is left out of the view",
        [("user", "u1"), ("assistant", "", "c1", "c2"), ("tool", "c2", "r2")],
        10,
        ["S:sys", "U:u1", "A:[c2]", "T:c2=r2"],
    ),
    (
        "an unanswered call with no text leaves nothing",
        [("user", "u1"), ("assistant", "", "c1"), ("user", "u2")],
        10,
        ["S:sys", "U:u1", "U:u2"],
    ),
    (
        "an unanswered call keeps its text",
        [("user", "u1"), ("assistant", "one moment", "c1"), ("user", "u2")],
        10,
        ["S:sys", "U:u1", "A:one moment", "U:u2"],
    ),
    (
        "results are listed in call order",
        [("user", "u1"), ("assistant", "", "c1", "c2"), ("tool", "c2", "r2"), ("tool", "c1", "r1")],
        10,
        ["S:sys", "U:u1", "A:[c1,c2]", "T:c1=r1", "T:c2=r2"],
    ),
    (
        "barge-in keeps the heard text",
        [("user", "u1"), ("assistant", "Sure. The forecast for"), ("replace", "Sure."), ("user", "u2")],
        10,
        ["S:sys", "U:u1", "A:Sure.", "U:u2"],
    ),
    (
        "barge-in before anything was heard removes the message",
        [("user", "u1"), ("assistant", "Sure."), ("replace", ""), ("user", "u2")],
        10,
        ["S:sys", "U:u1", "U:u2"],
    ),
    (
        "barge-in keeps tool calls and clears their text",
        [("user", "u1"), ("assistant", "let me check", "c1"), ("tool", "c1", "r1"), ("replace", "")],
        10,
        ["S:sys", "U:u1", "A:[c1]", "T:c1=r1"],
    ),
    (
        "barge-in replaces the newest assistant message only",
        [("user", "u1"), ("assistant", "a1"), ("user", "u2"), ("assistant", "a2 long"), ("replace", "a2")],
        10,
        ["S:sys", "U:u1", "A:a1", "U:u2", "A:a2"],
    ),
    ("empty assistant text alone is not stored", [("user", "u1"), ("assistant", "")], 10, ["S:sys", "U:u1"]),
]


@pytest.mark.parametrize(
    ("ops", "max_tokens", "expected"), [c[1:] for c in TRIM_CASES], ids=[c[0] for c in TRIM_CASES]
)
def test_trimmed_view(ops: list[Op], max_tokens: int, expected: list[str]) -> None:
    history = History("sys", max_tokens=max_tokens, count_tokens=one_token)
    apply(history, ops)
    assert short(history.messages()) == expected


@pytest.mark.parametrize(
    ("ops", "max_tokens", "expected"), [c[1:] for c in TRIM_CASES], ids=[c[0] for c in TRIM_CASES]
)
def test_view_never_holds_orphans(ops: list[Op], max_tokens: int, expected: list[str]) -> None:
    history = History("sys", max_tokens=max_tokens, count_tokens=one_token)
    apply(history, ops)
    messages = history.messages()
    calls = {c["id"] for m in messages for c in m.get("tool_calls", ())}
    results = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
    assert sorted(results) == sorted(calls)
    for i, m in enumerate(messages):
        if m["role"] == "tool":  # a result follows its call, with only results between
            j = i - 1
            while messages[j]["role"] == "tool":
                j -= 1
            assert m["tool_call_id"] in {c["id"] for c in messages[j]["tool_calls"]}


def test_tool_call_shape_is_openais() -> None:
    history = History("sys", max_tokens=100)
    history.add_user("weather?")
    history.add_assistant("", [{"id": "c1", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}])
    history.add_tool_result("c1", "rain")
    assert history.messages() == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
    ]
    assert len(history) == 3


def test_default_counter_trims_by_approximate_tokens() -> None:
    # system 4+1, each 40-char message 4+10: 75 tokens hold the system, the question and
    # two turns of two messages (5 + 14 + 2 * 28), 46 only the system and the question (one
    # turn more would make 47).
    history = History("sys", max_tokens=75)
    for i in range(3):
        history.add_user(f"{i}" * 40)
        history.add_assistant(f"{i}" * 40)
    history.add_user("q" * 40)
    assert [m["content"][0] for m in history.messages()[1:]] == ["1", "1", "2", "2", "q"]
    history.max_tokens = 46
    assert [m["content"][0] for m in history.messages()[1:]] == ["q"]


def test_newest_user_message_kept_even_if_alone_over_budget() -> None:
    history = History("sys", max_tokens=10)
    history.add_user("old")
    history.add_user("x" * 1000)
    assert short(history.messages()) == ["S:sys", "U:" + "x" * 1000]


def test_system_prompt_is_kept_and_can_change() -> None:
    history = History("a" * 400, max_tokens=10)
    history.add_user("hi")
    assert short(history.messages()) == ["S:" + "a" * 400, "U:hi"]
    history.system_prompt = "new"
    assert history.messages()[0] == {"role": "system", "content": "new"}


def test_custom_counter_sees_every_view_message() -> None:
    seen: list[str] = []

    def count(message: Mapping[str, Any]) -> int:
        seen.append(message["role"])
        return 1

    history = History("sys", max_tokens=100, count_tokens=count)
    apply(history, TOOL_TURN)
    history.messages()
    assert sorted(seen) == sorted(["system", "user", "assistant", "tool", "tool", "assistant", "user"])


def test_messages_are_copies() -> None:
    history = History("sys", max_tokens=100)
    apply(history, [("user", "u1"), ("assistant", "", "c1"), ("tool", "c1", "r1")])
    first = history.messages()
    first[1]["content"] = "changed"
    first[2]["tool_calls"][0]["function"]["name"] = "changed"
    first[2]["tool_calls"].clear()
    assert history.messages() == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": None, "tool_calls": [call("c1")]},
        {"role": "tool", "tool_call_id": "c1", "content": "r1"},
    ]


def test_cached_cost_follows_replacement() -> None:
    # Four short messages of 1 token of text each fit; a 100-token one does not.
    history = History("sys", max_tokens=4 * (MESSAGE_OVERHEAD_TOKENS + 1))
    history.add_user("old")
    history.add_assistant("x" * 400)
    history.add_user("new")
    assert short(history.messages()) == ["S:sys", "U:new"]
    history.replace_last_assistant("ok")
    assert short(history.messages()) == ["S:sys", "U:old", "A:ok", "U:new"]


@pytest.mark.parametrize(
    ("message", "tokens"),
    [
        ({"role": "user", "content": ""}, 4),
        ({"role": "user", "content": "abcd"}, 5),
        ({"role": "user", "content": "abcde"}, 6),
        ({"role": "assistant", "content": None, "tool_calls": [call("c1", "ab", "{}")]}, 5),
        ({"role": "assistant", "content": "abcd", "tool_calls": [call("c1", "abcd", "abcd")]}, 7),
        ({"role": "tool", "tool_call_id": "abcd", "content": "abcd"}, 6),
    ],
)
def test_approx_tokens(message: dict[str, Any], tokens: int) -> None:
    assert approx_tokens(message) == tokens


@pytest.mark.parametrize("max_tokens", [0, -1, True, 1.5, "100"])
def test_max_tokens_must_be_positive_int(max_tokens: Any) -> None:
    with pytest.raises(ConfigError, match="max_tokens must be a positive integer"):
        History("sys", max_tokens=max_tokens)


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([("user", "u1"), ("tool", "c9", "r")], "no assistant message made a tool call with id 'c9'"),
        ([("assistant", "", "c1"), ("tool", "c1", "r"), ("tool", "c1", "r")], "'c1' already has a result"),
        ([("user", "u1"), ("replace", "x")], "no assistant message to replace"),
        ([("replace", "")], "no assistant message to replace"),
    ],
)
def test_misuse_raises_history_error(ops: list[Op], message: str) -> None:
    history = History("sys", max_tokens=100)
    with pytest.raises(HistoryError, match=message):
        apply(history, ops)


@pytest.mark.parametrize(
    ("tool_call", "message"),
    [
        ({"function": {"name": "f", "arguments": "{}"}}, "tool call #0 has no id"),
        ({"id": "", "function": {"name": "f"}}, "tool call #0 has no id"),
        ({"id": "c1"}, "'c1' has no function name"),
        ({"id": "c1", "function": {"arguments": "{}"}}, "'c1' has no function name"),
        ({"id": "c1", "function": {"name": "f", "arguments": {"a": 1}}}, "arguments must be a JSON string"),
    ],
)
def test_malformed_tool_calls_are_rejected(tool_call: dict[str, Any], message: str) -> None:
    history = History("sys", max_tokens=100)
    with pytest.raises(HistoryError, match=message):
        history.add_assistant("", [tool_call])
    assert len(history) == 0


class _Unpruned(History):
    """The same history without forgetting: the reference for what every view must hold."""

    def _forget_unreachable(self) -> None:
        pass


@st.composite
def conversations(draw: st.DrawFn) -> list[Op]:
    """Calls as a session makes them: turns with replies, tool calls, barge-in cuts."""
    ops: list[Op] = []
    pending: list[str] = []
    replaceable = False
    for n in range(draw(st.integers(1, 60))):
        kind = draw(st.sampled_from(["user", "assistant", "tools", "result", "replace"]))
        text = "x" * draw(st.integers(0, 40))
        if kind == "user":
            ops.append(("user", text))
        elif kind == "assistant":
            ops.append(("assistant", text or "a"))
            replaceable = True
        elif kind == "tools":
            ids = [f"c{n}.{i}" for i in range(draw(st.integers(1, 2)))]
            pending += ids
            ops.append(("assistant", text, *ids))
            replaceable = True
        elif kind == "result" and pending:
            ops.append(("tool", pending.pop(draw(st.integers(0, len(pending) - 1))), text))
        elif kind == "replace" and replaceable:
            ops.append(("replace", text))
            replaceable = False  # the session cuts a reply once
    return ops


@settings(max_examples=300)
@given(ops=conversations(), max_tokens=st.integers(1, 60))
def test_forgetting_never_changes_a_view(ops: list[Op], max_tokens: int) -> None:
    history = History("sys", max_tokens=max_tokens)
    reference = _Unpruned("sys", max_tokens=max_tokens)
    for op in ops:
        apply(history, [op])
        apply(reference, [op])
        assert history.messages() == reference.messages()


def test_a_long_call_keeps_a_bounded_history() -> None:
    history = History("sys", max_tokens=200)
    for turn in range(2000):
        history.add_user(f"question {turn}")
        history.add_assistant("an answer of some length " * 3)
    assert len(history) < 60
    assert short(history.messages())[-2:] == ["U:question 1999", "A:" + "an answer of some length " * 3]

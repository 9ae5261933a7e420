from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import math
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict, TypeVar

import pytest

from voicecore.call_info import CallInfo
from voicecore.errors import ConfigError
from voicecore.tools import (
    DEFAULT_TIMEOUT,
    Tool,
    Toolbox,
    ToolCall,
    ToolResult,
    function_tool,
    invoke,
    invoke_all,
)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Size(enum.IntEnum):
    S = 1
    M = 2


class Address(TypedDict):
    """A postal address.

    Attributes:
        street: Street and number.
        zip: Postal code.
    """

    street: str
    zip: NotRequired[str]


@dataclass
class Item:
    """A line item.

    Attributes:
        sku: Stock keeping unit.
        qty: How many.
    """

    sku: str
    qty: int = 1


@dataclass
class Plain:
    x: int


@dataclass
class Node:
    child: Node | None


class Ratio(enum.Enum):
    HALF = 0.5


def tool_for(annotation: Any, default: Any = inspect.Parameter.empty) -> Tool:
    """A one-parameter tool ``f(x: annotation = default)``."""

    def f(x):  # type: ignore[no-untyped-def]
        """Doc."""

    f.__annotations__ = {"x": annotation}
    if default is not inspect.Parameter.empty:
        f.__defaults__ = (default,)
    return function_tool(f)


# --- schemas -------------------------------------------------------------------------------

SCHEMAS: list[tuple[Any, dict[str, Any]]] = [
    (str, {"type": "string"}),
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (None, {"type": "null"}),
    (Optional[int], {"type": ["integer", "null"]}),  # noqa: UP045 (the typing spelling is supported too)
    (int | None, {"type": ["integer", "null"]}),
    (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
    (Literal[1, 2], {"type": "integer", "enum": [1, 2]}),
    (Literal["a", 1], {"enum": ["a", 1]}),
    (Literal["a"] | None, {"type": ["string", "null"], "enum": ["a", None]}),
    (Color, {"type": "string", "enum": ["red", "blue"]}),
    (Size, {"type": "integer", "enum": [1, 2]}),
    (list[str], {"type": "array", "items": {"type": "string"}}),
    (list[list[int]], {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}),
    (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
    (list[int] | None, {"type": ["array", "null"], "items": {"type": "integer"}}),
    (Annotated[int, "meta"], {"type": "integer"}),
    (
        Address,
        {
            "type": "object",
            "description": "A postal address.",
            "properties": {
                "street": {"type": "string", "description": "Street and number."},
                "zip": {"type": "string", "description": "Postal code."},
            },
            "required": ["street"],
        },
    ),
    (
        Item,
        {
            "type": "object",
            "description": "A line item.",
            "properties": {
                "sku": {"type": "string", "description": "Stock keeping unit."},
                "qty": {"type": "integer", "description": "How many."},
            },
            "required": ["sku"],
        },
    ),
    (Plain, {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}),
    (
        list[Plain] | None,
        {
            "type": ["array", "null"],
            "items": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
        },
    ),
    (
        Plain | None,
        {
            "anyOf": [
                {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
                {"type": "null"},
            ]
        },
    ),
]


@pytest.mark.parametrize(("annotation", "schema"), SCHEMAS, ids=[repr(a) for a, _ in SCHEMAS])
def test_parameter_schema(annotation: Any, schema: dict[str, Any]) -> None:
    assert tool_for(annotation).parameters == {
        "type": "object",
        "properties": {"x": schema},
        "required": ["x"],
        "additionalProperties": False,
    }


UNSUPPORTED: list[tuple[Any, str]] = [
    (Any, "unsupported type annotation Any"),
    (object, "unsupported type annotation object"),
    (bytes, "unsupported type annotation bytes"),
    (tuple[int, int], "unsupported type annotation tuple[int, int]"),
    (set[str], "unsupported type annotation set[str]"),
    (list, "unsupported type annotation list"),
    (dict[int, str], "dict keys must be str"),
    (int | str, "unions other than Optional"),
    (int | str | None, "unions other than Optional"),
    (Literal[1.5], "choice 1.5 is not a str, int, bool or None"),
    (Ratio, "choice 0.5 is not a str, int, bool or None"),
    (Node, "recursive type Node"),
    (list[complex], "unsupported type annotation complex"),
    (dict[str, Plain | int], "unions other than Optional"),
]


@pytest.mark.parametrize(("annotation", "message"), UNSUPPORTED, ids=[repr(a) for a, _ in UNSUPPORTED])
def test_unsupported_annotation_names_function_and_parameter(annotation: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=r"parameter 'x' of tool 'f'") as exc:
        tool_for(annotation)
    assert message in str(exc.value)


def test_nested_field_is_named_in_errors() -> None:
    @dataclass
    class Bad:
        y: complex

    with pytest.raises(ConfigError, match=r"parameter 'x' of tool 'f', field 'y' of .*Bad: unsupported"):
        tool_for(Bad)


def test_description_and_argument_docs_come_from_the_docstring() -> None:
    @function_tool
    def book(city: str, nights: int = 1, unit: Color = Color.RED, note: str | None = None) -> str:
        """Book a hotel room.

        Only when the caller
        has confirmed the dates.

        Args:
            city (str): City to book in; a
                continuation line.
            nights: Number of nights.

        Returns:
            A confirmation code.

        Raises:
            ValueError: never.
        """
        return city

    assert book.schema() == {
        "type": "function",
        "function": {
            "name": "book",
            "description": "Book a hotel room.\n\nOnly when the caller has confirmed the dates.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City to book in; a continuation line."},
                    "nights": {"type": "integer", "description": "Number of nights.", "default": 1},
                    "unit": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                    "note": {"type": ["string", "null"], "default": None},
                },
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    assert book.timeout == DEFAULT_TIMEOUT
    assert book("Oslo") == "Oslo"  # still callable as the function


def test_options_override_name_description_and_timeout() -> None:
    @function_tool(name="lookup-order", description="Find an order.", timeout=2.5)
    async def find(order_id: str) -> str:
        """Ignored."""
        return order_id

    assert (find.name, find.description, find.timeout) == ("lookup-order", "Find an order.", 2.5)


def f_no_doc(x: int) -> None:
    pass


def f_args(*args: int) -> None:
    """Doc."""


def f_kwargs(**kwargs: int) -> None:
    """Doc."""


def f_posonly(x: int, /) -> None:
    """Doc."""


def f_unannotated(x, y: int) -> None:  # type: ignore[no-untyped-def]
    """Doc."""


def f_extra_doc(x: int) -> None:
    """Doc.

    Args:
        x: An x.
        y: Not a parameter.
    """


def f_forward_ref(x: Undefined) -> None:  # type: ignore[name-defined]  # noqa: F821
    """Doc."""


def f_mutable_default(x: list[int] = [1]) -> None:  # noqa: B006
    """Doc."""


@pytest.mark.parametrize(
    ("fn", "options", "message"),
    [
        (f_no_doc, {}, "tool 'f_no_doc' has no description"),
        (f_args, {}, "parameter 'args' of tool 'f_args': \\*args, \\*\\*kwargs and positional-only"),
        (f_kwargs, {}, "parameter 'kwargs' of tool 'f_kwargs'"),
        (f_posonly, {}, "parameter 'x' of tool 'f_posonly'"),
        (f_unannotated, {}, "parameter 'x' of tool 'f_unannotated' has no type annotation"),
        (f_extra_doc, {}, "docstring of tool 'f_extra_doc' documents parameters it does not have: y"),
        (f_forward_ref, {}, "tool 'f_forward_ref': cannot resolve its type hints"),
        (f_mutable_default, {}, "tool 'f_mutable_default'"),
        (f_no_doc, {"description": "ok", "name": "has space"}, "tool name 'has space' must be"),
        (f_no_doc, {"description": "ok", "name": "x" * 65}, "must be 1-64"),
        (f_no_doc, {"description": "ok", "timeout": 0}, "timeout must be a positive number"),
        (f_no_doc, {"description": "ok", "timeout": -1}, "timeout must be a positive number"),
        (f_no_doc, {"description": "ok", "timeout": math.inf}, "timeout must be a positive number"),
        (f_no_doc, {"description": "ok", "timeout": math.nan}, "timeout must be a positive number"),
    ],
)
def test_bad_definitions_raise_config_error(
    fn: Callable[..., Any], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        function_tool(**options)(fn)


def test_staticmethod_object_is_rejected() -> None:
    with pytest.raises(ConfigError, match="needs a function"):
        function_tool(staticmethod(f_no_doc))  # type: ignore[arg-type]


# --- methods and toolboxes -----------------------------------------------------------------


class Agent:
    def __init__(self, who: str) -> None:
        self.who = who

    @function_tool(timeout=3)
    async def greet(self, name: str) -> str:
        """Greet someone.

        Args:
            name: Who to greet.
        """
        return f"{self.who} greets {name}"

    @function_tool
    def count(self, items: list[str]) -> int:
        """Count items."""
        return len(items)

    @function_tool
    def static_like(x: int) -> int:  # type: ignore[misc]  # no self: never bound  # noqa: N805
        """Double x."""
        return 2 * x

    def not_a_tool(self) -> None:
        pass


class LoudAgent(Agent):
    @function_tool
    async def greet(self, name: str) -> str:
        """Greet someone loudly."""
        return f"{self.who} GREETS {name}"

    count = None  # type: ignore[assignment]  # hides the base tool


def test_method_tool_leaves_self_out_and_binds_on_instance_access() -> None:
    assert Agent.greet.parameters["properties"] == {
        "name": {"type": "string", "description": "Who to greet."}
    }
    assert Agent.greet.method
    bound = Agent("ann").greet
    assert not bound.method
    assert (bound.name, bound.timeout) == ("greet", 3)
    assert run(bound("bob")) == "ann greets bob"
    assert run(invoke(Agent("cy").greet, '{"name": "dee"}')).content == "cy greets dee"
    assert Agent("ann").static_like(4) == 8


def test_toolbox_from_object_in_definition_order() -> None:
    box = Toolbox.from_object(Agent("ann"))
    assert [t.name for t in box] == ["greet", "count", "static_like"]
    assert len(box) == 3
    assert "count" in box
    assert "not_a_tool" not in box
    assert run(invoke(box["count"], '{"items": ["a", "b"]}')).content == "2"
    assert box.schemas() == [t.schema() for t in box]
    assert box.get("nope") is None


def test_toolbox_from_subclass_uses_overrides() -> None:
    box = Toolbox.from_object(LoudAgent("ann"))
    assert [t.name for t in box] == ["greet", "static_like"]
    assert run(invoke(box["greet"], '{"name": "bob"}')).content == "ann GREETS bob"


def test_toolbox_rejects_duplicate_names() -> None:
    with pytest.raises(ConfigError, match="two tools are named 'count'"):
        Toolbox([Agent.count, function_tool(name="count", description="d")(f_no_doc)])

    class Clash:
        @function_tool(name="same")
        def a(self) -> None:
            """A."""

        @function_tool(name="same")
        def b(self) -> None:
            """B."""

    with pytest.raises(ConfigError, match="two tools are named 'same'"):
        Toolbox.from_object(Clash())


# --- invoke --------------------------------------------------------------------------------


@function_tool
def weather(city: str, days: int = 1, unit: Color = Color.RED) -> dict[str, Any]:
    """Forecast."""
    return {"city": city, "days": days, "unit": unit}


@function_tool
def no_args() -> str:
    """Nothing needed."""
    return "done"


@pytest.mark.parametrize(
    ("arguments", "content"),
    [
        ('{"city": "Oslo"}', '{"city":"Oslo","days":1,"unit":"red"}'),
        ('{"city": "Oslo", "days": 3, "unit": "blue"}', '{"city":"Oslo","days":3,"unit":"blue"}'),
        (' {"days": 2, "city": "Rome"} ', '{"city":"Rome","days":2,"unit":"red"}'),
    ],
)
def test_invoke_validates_and_converts_arguments(arguments: str, content: str) -> None:
    assert run(invoke(weather, arguments, call_id="c1")) == ToolResult("c1", "weather", content)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{city: Oslo}", "JSON is malformed"),
        ('{"days": 2}', "Object missing required field `city`"),
        ('{"city": "Oslo", "days": "two"}', "Expected `int`, got `str` - at `$.days`"),
        ('{"city": "Oslo", "days": true}', "Expected `int`, got `bool` - at `$.days`"),
        ('{"city": "Oslo", "unit": "green"}', "Invalid enum value 'green' - at `$.unit`"),
        ('{"city": "Oslo", "when": "now"}', "Object contains unknown field `when`"),
        ('["Oslo"]', "Expected `object`, got `array`"),
        ("", "Object missing required field `city`"),
    ],
)
def test_invalid_arguments_become_error_results(arguments: str, message: str) -> None:
    result = run(invoke(weather, arguments, call_id="c1"))
    assert result.is_error
    assert (result.call_id, result.name) == ("c1", "weather")
    assert result.content.startswith("Error: invalid arguments for weather: ")
    assert message in result.content


@pytest.mark.parametrize("arguments", ["", "  ", "{}"])
def test_no_argument_tool_accepts_empty_arguments(arguments: str) -> None:
    assert run(invoke(no_args, arguments)) == ToolResult("", "no_args", "done")


@pytest.mark.parametrize(
    ("value", "content"),
    [
        ("plain text", "plain text"),
        ("", ""),
        (42, "42"),
        (None, "null"),
        ([1, "a"], '[1,"a"]'),
        (Item("x", 2), '{"sku":"x","qty":2}'),
        (Color.BLUE, '"blue"'),
    ],
)
def test_return_values_become_text(value: Any, content: str) -> None:
    tool = Tool(name="t", description="d", parameters={}, fn=lambda: value)
    assert run(invoke(tool, "{}")) == ToolResult("", "t", content)


def test_unserialisable_return_is_an_error() -> None:
    tool = Tool(name="t", description="d", parameters={}, fn=lambda: object())
    result = run(invoke(tool, "{}"))
    assert result.is_error
    assert result.content.startswith("Error: t returned a value that cannot be read")


def test_sync_tools_run_in_a_worker_thread_and_async_ones_on_the_loop() -> None:
    threads: dict[str, int] = {}

    def sync_tool() -> None:
        threads["sync"] = threading.get_ident()

    async def async_tool() -> None:
        threads["async"] = threading.get_ident()

    async def main() -> None:
        for fn in (sync_tool, async_tool):
            await invoke(Tool(name="t", description="d", parameters={}, fn=fn), "")

    run(main())
    assert threads["async"] == threading.get_ident()
    assert threads["sync"] != threading.get_ident()


def test_sync_callable_returning_a_coroutine_is_awaited() -> None:
    async def later() -> str:
        return "later"

    tool = Tool(name="t", description="d", parameters={}, fn=lambda: later())
    assert run(invoke(tool, "")).content == "later"


def test_hand_built_tool_gets_the_json_object_as_keywords() -> None:
    tool = Tool(name="hook", description="d", parameters={"type": "object"}, fn=lambda **kw: kw)
    assert run(invoke(tool, '{"a": 1, "b": [2]}')).content == '{"a":1,"b":[2]}'
    result = run(invoke(tool, "[1]"))
    assert result.is_error
    assert "Expected a JSON object, got list" in result.content


def test_exception_in_tool_is_an_error_result_and_its_text_stays_out_of_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def failing() -> None:
        raise LookupError("no order for card 4111 1111 1111 1111")

    tool = Tool(name="t", description="d", parameters={}, fn=failing)
    with caplog.at_level(logging.WARNING, logger="voicecore.tools"):
        result = run(invoke(tool, ""))
    assert result == ToolResult(
        "", "t", "Error: t failed: LookupError: no order for card 4111 1111 1111 1111", True
    )
    assert [r.getMessage() for r in caplog.records] == ["tool t raised LookupError"]


def blocked_async_tool(timeout: float) -> tuple[Tool, list[str]]:
    """An async tool that never finishes on its own, and a log of how it ended."""
    log: list[str] = []

    async def blocked() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.append("cancelled")
            raise

    return Tool(name="blocked", description="d", parameters={}, fn=blocked, timeout=timeout), log


def test_async_tool_timeout_is_an_error_result_and_cancels_it() -> None:
    tool, log = blocked_async_tool(0.01)
    assert run(invoke(tool, "")) == ToolResult("", "blocked", "Error: blocked timed out after 0.01 s", True)
    assert log == ["cancelled"]


def test_invoke_timeout_overrides_the_tools_own() -> None:
    tool, _ = blocked_async_tool(DEFAULT_TIMEOUT)
    assert run(invoke(tool, "", timeout=0.02)).content == "Error: blocked timed out after 0.02 s"


def test_sync_tool_timeout_is_an_error_result() -> None:
    release = threading.Event()
    tool = Tool(name="sleepy", description="d", parameters={}, fn=release.wait, timeout=0.01)

    async def main() -> ToolResult:
        try:
            return await invoke(tool, "")
        finally:
            release.set()  # let the worker thread finish so the loop can shut down

    assert run(main()).content == "Error: sleepy timed out after 0.01 s"


def test_timeout_error_raised_by_the_tool_is_a_failure_not_a_timeout() -> None:
    def fails() -> None:
        raise TimeoutError("upstream")

    result = run(invoke(Tool(name="t", description="d", parameters={}, fn=fails), ""))
    assert result.content == "Error: t failed: TimeoutError: upstream"


def test_cancelling_invoke_cancels_the_tool() -> None:
    tool, log = blocked_async_tool(DEFAULT_TIMEOUT)

    async def main() -> None:
        task = asyncio.create_task(invoke(tool, ""))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert log == ["cancelled"]


# --- invoke_all ----------------------------------------------------------------------------


def test_invoke_all_runs_in_parallel_and_keeps_call_order() -> None:
    # "first" can only finish after "second" has started and set the event: run one at a
    # time, first would time out.
    order: list[str] = []

    async def main() -> list[ToolResult]:
        started = asyncio.Event()

        @function_tool(timeout=5)
        async def first() -> str:
            """First."""
            await started.wait()
            order.append("first")
            return "one"

        @function_tool
        async def second() -> str:
            """Second."""
            started.set()
            order.append("second")
            return "two"

        calls = [ToolCall("c1", "first", "{}"), ToolCall("c2", "second", "")]
        return await invoke_all(calls, Toolbox([first, second]))

    assert run(main()) == [ToolResult("c1", "first", "one"), ToolResult("c2", "second", "two")]
    assert order == ["second", "first"]


def test_failure_in_one_call_does_not_cancel_the_others() -> None:
    async def main() -> list[ToolResult]:
        failing_started = asyncio.Event()

        @function_tool
        async def waits() -> str:
            """Waits for the failing tool to have run."""
            await failing_started.wait()
            await asyncio.sleep(0)
            return "still here"

        @function_tool
        async def fails() -> str:
            """Fails."""
            failing_started.set()
            raise RuntimeError("boom")

        slow, _ = blocked_async_tool(0.01)
        calls = [
            ToolCall("c1", "waits", ""),
            ToolCall("c2", "fails", ""),
            ToolCall("c3", "blocked", ""),
            ToolCall("c4", "missing", '{"x": 1}'),
            ToolCall("c5", "waits", "[]"),
        ]
        return await invoke_all(calls, Toolbox([waits, fails, slow]))

    assert run(main()) == [
        ToolResult("c1", "waits", "still here"),
        ToolResult("c2", "fails", "Error: fails failed: RuntimeError: boom", True),
        ToolResult("c3", "blocked", "Error: blocked timed out after 0.01 s", True),
        ToolResult(
            "c4", "missing", "Error: there is no tool 'missing'; available tools: waits, fails, blocked", True
        ),
        ToolResult(
            "c5",
            "waits",
            "Error: invalid arguments for waits: Expected `object`, got `array`. Fix them and call it again.",
            True,
        ),
    ]


def test_invoke_all_timeout_applies_to_each_call() -> None:
    a, _ = blocked_async_tool(DEFAULT_TIMEOUT)
    results = run(
        invoke_all([ToolCall("1", "blocked", ""), ToolCall("2", "blocked", "")], Toolbox([a]), timeout=0.01)
    )
    assert [r.content for r in results] == ["Error: blocked timed out after 0.01 s"] * 2


def test_cancelling_invoke_all_cancels_every_call() -> None:
    tool, log = blocked_async_tool(DEFAULT_TIMEOUT)

    async def main() -> None:
        task = asyncio.create_task(
            invoke_all([ToolCall("1", "blocked", ""), ToolCall("2", "blocked", "")], Toolbox([tool]))
        )
        for _ in range(3):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert log == ["cancelled", "cancelled"]


def test_tool_cancelling_itself_is_reported_without_stopping_the_others() -> None:
    async def gives_up() -> None:
        raise asyncio.CancelledError

    tools = Toolbox([Tool(name="gives_up", description="d", parameters={}, fn=gives_up), no_args])
    results = run(invoke_all([ToolCall("1", "gives_up", ""), ToolCall("2", "no_args", "")], tools))
    assert results == [
        ToolResult("1", "gives_up", "Error: gives_up was cancelled", True),
        ToolResult("2", "no_args", "done"),
    ]


def test_invoke_all_with_no_calls() -> None:
    assert run(invoke_all([], Toolbox())) == []


def test_tool_call_from_openai_shape() -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
    }
    assert ToolCall.from_openai(call) == ToolCall("call_1", "weather", '{"city":"Oslo"}')
    assert ToolCall.from_openai({"id": "c", "function": {"name": "n", "arguments": None}}) == ToolCall(
        "c", "n", ""
    )


# --- the call a tool runs in ---------------------------------------------------------------


class Bookings:
    @function_tool
    async def my_bookings(self, call: CallInfo, day: str) -> str:
        """List the caller's bookings.

        Args:
            call: The call (filled by voicecore, not the LLM).
            day: Which day, as YYYY-MM-DD.
        """
        return f"{call.remote_number} on {day} ({call.direction}, {call.parameters.get('ref')})"


def test_a_call_info_parameter_stays_out_of_the_schema_and_receives_the_call() -> None:
    tool = Bookings().my_bookings
    assert tool.call_parameter == "call"
    assert tool.parameters == {
        "type": "object",
        "properties": {"day": {"type": "string", "description": "Which day, as YYYY-MM-DD."}},
        "required": ["day"],
        "additionalProperties": False,
    }
    call = CallInfo(call_id="CA1", direction="outbound", to_number="+14155550100", parameters={"ref": "7"})
    result = run(
        invoke_all([ToolCall("c1", "my_bookings", '{"day": "2026-12-01"}')], Toolbox([tool]), call=call)
    )
    assert result == [ToolResult("c1", "my_bookings", "+14155550100 on 2026-12-01 (outbound, 7)")]
    outside = run(invoke(tool, '{"day": "2026-12-01"}'))  # outside a call: an unknown one
    assert outside.content == "None on 2026-12-01 (inbound, None)"


def test_the_llm_cannot_fill_the_call_info_parameter() -> None:
    call = CallInfo(call_id="CA1", from_number="+14155550100")
    forged = '{"day": "2026-12-01", "call": {"call_id": "CA2"}}'
    result = run(invoke(Bookings().my_bookings, forged, call=call))
    assert result.is_error
    assert "Object contains unknown field `call`" in result.content


def test_only_one_parameter_may_receive_the_call_info() -> None:
    def twice(a: CallInfo, b: CallInfo) -> str:
        """Twice."""
        return ""

    with pytest.raises(ConfigError, match="parameter 'b' of tool 'twice': only one parameter may receive"):
        function_tool(twice)

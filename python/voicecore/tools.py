"""Tools the LLM can call: schemas from type hints, validated calls, parallel execution.

Decorate a function, or a method of an agent class, with :func:`function_tool`::

    class Agent:
        @function_tool(timeout=5)
        async def weather(self, city: str, unit: Literal["C", "F"] = "C") -> str:
            \"\"\"Get the current weather in a city.\"\"\"

The parameters' schema comes from the type hints, the description from the docstring, and
each parameter's description from the docstring's ``Args:`` section. A parameter annotated
:class:`~voicecore.call_info.CallInfo` is not the LLM's to fill: it receives the call the
tool runs in (the caller's number, an outbound call's data) and stays out of the schema. The result is a
:class:`Tool`; on an instance (``agent.weather``) it is bound to that instance.
:class:`Toolbox` collects tools by name (``Toolbox.from_object(agent)``) and gives the
``tools`` list for the chat completion request. :func:`invoke` runs one call and
:func:`invoke_all` runs all the calls of one LLM response in parallel.

Failures never raise: malformed or ill-typed arguments, an unknown tool, a timeout or an
exception inside the tool all come back as a :class:`ToolResult` with ``is_error=True``
and a message the LLM can act on. Only cancellation propagates. Mistakes in a tool's
definition (an unsupported annotation, a bad name) raise
:class:`~voicecore.errors.ConfigError` when the tool is defined, i.e. at startup.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
import json
import logging
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import msgspec

from voicecore._toolschema import parse_docstring, type_schema
from voicecore.call_info import CallInfo
from voicecore.errors import ConfigError

__all__ = [
    "DEFAULT_TIMEOUT",
    "Tool",
    "ToolCall",
    "ToolResult",
    "Toolbox",
    "function_tool",
    "invoke",
    "invoke_all",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
"""Seconds a tool may run when its definition sets no timeout."""

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what the OpenAI API accepts
_JSON_DEFAULT_TYPES = (str, int, float, bool, type(None))

ArgumentParser = Callable[[str], Mapping[str, Any]]
"""Parses a call's JSON arguments into keyword arguments; raises ValueError when invalid."""


def _parse_object(arguments_json: str) -> Mapping[str, Any]:
    """Parse arguments as a JSON object without checking its fields."""
    value = json.loads(arguments_json or "{}")
    if not isinstance(value, dict):
        raise ValueError(f"Expected a JSON object, got {type(value).__name__}")
    return value


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    """A function the LLM can call.

    Usually made by :func:`function_tool`; build one directly for a tool without a Python
    signature (e.g. a webhook), giving its ``parameters`` schema by hand.

    Attributes:
        name: Name the LLM calls it by (letters, digits, ``_`` and ``-``, at most 64).
        description: What it does and when to use it, for the LLM.
        parameters: JSON schema of its arguments (an object schema).
        fn: The callable, sync or async; called with the arguments as keywords.
        timeout: Seconds a call may take before it is abandoned.
        parse_arguments: Turns the call's JSON arguments into keyword arguments and raises
            ValueError, with a message for the LLM, when they are invalid. The default
            only requires a JSON object.
        method: True for a tool defined on a class: reading it from an instance gives a
            copy whose ``fn`` is bound to that instance.
        call_parameter: The parameter that receives the call's :class:`CallInfo` (None: none).
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    timeout: float = DEFAULT_TIMEOUT
    parse_arguments: ArgumentParser = dataclasses.field(default=_parse_object, repr=False, compare=False)
    method: bool = dataclasses.field(default=False, repr=False)
    call_parameter: str | None = None

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ConfigError(f"tool name {self.name!r} must be 1-64 letters, digits, underscores or hyphens")
        if not isinstance(self.timeout, int | float) or not math.isfinite(self.timeout) or self.timeout <= 0:
            raise ConfigError(f"tool {self.name!r}: timeout must be a positive number of seconds")

    def __get__(self, instance: object, owner: type | None = None) -> Tool:
        """Bind a method tool to the instance it is read from."""
        if instance is None or not self.method:
            return self
        return dataclasses.replace(self, fn=types.MethodType(self.fn, instance), method=False)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly, as if it were not decorated."""
        return self.fn(*args, **kwargs)

    def schema(self) -> dict[str, Any]:
        """The tool's entry for the ``tools`` list of a chat completion request."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@overload
def function_tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def function_tool(
    *, name: str | None = None, description: str | None = None, timeout: float | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...


def function_tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a function or method into a :class:`Tool`, with a schema from its signature.

    Used bare (``@function_tool``) or with options (``@function_tool(timeout=3)``). The
    parameter schema comes from the type hints (see :mod:`voicecore._toolschema` for the
    supported ones); parameters with defaults are optional. The description is the
    docstring's text before its first section, and each ``Args:`` entry describes its
    parameter. A function whose first parameter is ``self`` and that is defined in a class
    body is a method: ``self`` is left out of the schema and bound on instance access.

    Args:
        fn: The function to wrap (when used without options).
        name: Tool name; the function's name by default.
        description: Tool description; from the docstring by default.
        timeout: Seconds a call may take; :data:`DEFAULT_TIMEOUT` by default.

    Returns:
        The tool, or a decorator that makes one when options were given.

    Raises:
        ConfigError: A parameter has no or an unsupported annotation, is ``*args``,
            ``**kwargs`` or positional-only; the docstring documents a parameter the
            function lacks; there is no description; or the name or timeout is invalid.
    """

    def decorate(fn: Callable[..., Any]) -> Tool:
        return _build(fn, name=name, description=description, timeout=timeout)

    return decorate if fn is None else decorate(fn)


def _is_method(fn: Callable[..., Any], params: list[inspect.Parameter]) -> bool:
    qualname = getattr(fn, "__qualname__", "")
    in_class_body = "." in qualname and not qualname.rsplit(".", 1)[0].endswith("<locals>")
    return in_class_body and bool(params) and params[0].name == "self"


def _build(
    fn: Callable[..., Any], *, name: str | None, description: str | None, timeout: float | None
) -> Tool:
    if not callable(fn) or isinstance(fn, staticmethod | classmethod):
        raise ConfigError(f"@function_tool needs a function, not {fn!r}")
    name = name or str(getattr(fn, "__name__", ""))
    where = f"tool {name!r}"
    doc = parse_docstring(inspect.getdoc(fn))
    description = doc.description if description is None else description
    if not description:
        raise ConfigError(f"{where} has no description: give it a docstring or description=")
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # NameError for a forward reference, or anything the hint raises
        raise ConfigError(f"{where}: cannot resolve its type hints: {exc}") from exc
    params = list(inspect.signature(fn).parameters.values())
    method = _is_method(fn, params)
    if method:
        params = params[1:]

    properties: dict[str, Any] = {}
    required: list[str] = []
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    call_parameter: str | None = None
    for param in params:
        what = f"parameter {param.name!r} of {where}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigError(f"{what}: *args, **kwargs and positional-only parameters are not supported")
        if param.name not in hints:
            raise ConfigError(f"{what} has no type annotation")
        if hints[param.name] is CallInfo:
            if call_parameter is not None:
                raise ConfigError(f"{what}: only one parameter may receive the CallInfo")
            call_parameter = param.name
            continue
        schema = type_schema(hints[param.name], what)
        if param.name in doc.args:
            schema["description"] = doc.args[param.name]
        if param.default is param.empty:
            required.append(param.name)
            fields.append((param.name, hints[param.name]))
        else:
            default = param.default.value if isinstance(param.default, enum.Enum) else param.default
            if isinstance(default, _JSON_DEFAULT_TYPES):
                schema["default"] = default
            fields.append((param.name, hints[param.name], param.default))
        properties[param.name] = schema
    extra = sorted(set(doc.args) - set(properties) - {call_parameter})
    if extra:
        raise ConfigError(
            f"the docstring of {where} documents parameters it does not have: {', '.join(extra)}"
        )

    try:
        struct = msgspec.defstruct(f"{name}_arguments", fields, kw_only=True, forbid_unknown_fields=True)
        decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(struct)
    except (TypeError, ValueError) as exc:  # e.g. a mutable default msgspec cannot copy
        raise ConfigError(f"{where}: {exc}") from exc
    names = tuple(properties)

    def parse_arguments(arguments_json: str) -> Mapping[str, Any]:
        arguments = decoder.decode(arguments_json.strip() or "{}")
        return {field: getattr(arguments, field) for field in names}

    return Tool(
        name=name,
        description=description,
        parameters={
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        },
        fn=fn,
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        parse_arguments=parse_arguments,
        method=method,
        call_parameter=call_parameter,
    )


class Toolbox:
    """Tools by name, for looking calls up and for the request's ``tools`` list.

    Args:
        tools: The tools, in the order they are offered to the LLM.

    Raises:
        ConfigError: Two tools have the same name.
    """

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ConfigError(f"two tools are named {tool.name!r}")
            self._tools[tool.name] = tool

    @classmethod
    def from_object(cls, obj: object) -> Toolbox:
        """Collect the tool methods of an object, bound to it, in definition order.

        Tools are found on the object's class and its bases; a subclass attribute overrides
        the base's (and hides it when it is not a tool).

        Args:
            obj: An instance of a class with :func:`function_tool` methods (or attributes).

        Returns:
            A toolbox holding them.

        Raises:
            ConfigError: Two of them have the same tool name.
        """
        attributes: dict[str, None] = {}
        for klass in reversed(type(obj).__mro__):
            for attribute, value in vars(klass).items():
                if isinstance(value, Tool):
                    attributes[attribute] = None
                else:
                    attributes.pop(attribute, None)
        return cls(getattr(obj, attribute) for attribute in attributes)

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"Toolbox({list(self._tools)!r})"

    def get(self, name: str) -> Tool | None:
        """The tool with this name, or None."""
        return self._tools.get(name)

    def schemas(self) -> list[dict[str, Any]]:
        """The ``tools`` list of a chat completion request."""
        return [tool.schema() for tool in self._tools.values()]


@dataclasses.dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call requested by the LLM.

    Attributes:
        id: The call id the result must carry back.
        name: Name of the tool to call.
        arguments: The arguments as the LLM wrote them (a JSON object, as a string).
    """

    id: str
    name: str
    arguments: str

    @classmethod
    def from_openai(cls, call: Mapping[str, Any]) -> ToolCall:
        """Read a call in the OpenAI shape ``{"id", "function": {"name", "arguments"}}``."""
        function = call["function"]
        return cls(call["id"], function["name"], function.get("arguments") or "")


@dataclasses.dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome of one tool call, as text for the LLM.

    Attributes:
        call_id: Id of the call this answers (empty when :func:`invoke` was given none).
        name: Name of the tool called.
        content: The return value as text (a string as is, anything else as JSON), or for
            an error a message starting with ``"Error: "`` that says what to do.
        is_error: True when the call did not return normally.
    """

    call_id: str
    name: str
    content: str
    is_error: bool = False


# ASYNC109: the timeout is per call and turns into an error result for the LLM, which an
# asyncio.timeout() around the call (raising at the caller) would not do.
async def invoke(
    tool: Tool,
    arguments_json: str,
    *,
    timeout: float | None = None,  # noqa: ASYNC109
    call_id: str = "",
    call: CallInfo | None = None,
) -> ToolResult:
    """Validate the arguments, run the tool within its timeout, and describe the result.

    Sync tools run in a worker thread (``asyncio.to_thread``) so they cannot stall the
    event loop; a sync tool that times out keeps its thread until it returns, as threads
    cannot be stopped.

    Args:
        tool: The tool to run.
        arguments_json: The call's arguments, a JSON object (an empty string means none).
        timeout: Seconds to allow; the tool's own ``timeout`` when None.
        call_id: Copied into the result.
        call: The call it runs in, for a tool with a ``CallInfo`` parameter (None: an
            unknown call, ``CallInfo(call_id="")``).

    Returns:
        The result; ``is_error`` is set, and never an exception raised, for invalid
        arguments, a timeout, an exception in the tool or a result that is not
        JSON-serialisable. Cancellation of the caller propagates.
    """

    def failed(message: str) -> ToolResult:
        return ToolResult(call_id, tool.name, f"Error: {message}", is_error=True)

    try:
        kwargs = tool.parse_arguments(arguments_json)
    except ValueError as exc:  # msgspec's and json's decode errors are ValueErrors
        return failed(f"invalid arguments for {tool.name}: {exc}. Fix them and call it again.")
    if tool.call_parameter is not None:
        kwargs = {**kwargs, tool.call_parameter: call if call is not None else CallInfo(call_id="")}

    limit = tool.timeout if timeout is None else timeout
    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            value = await _call(tool.fn, kwargs)
    except Exception as exc:
        if isinstance(exc, TimeoutError) and deadline.expired():
            logger.warning("tool %s timed out after %g s", tool.name, limit)
            return failed(f"{tool.name} timed out after {limit:g} s")
        # The exception text can hold call data (PII): only its type goes to the log.
        logger.warning("tool %s raised %s", tool.name, type(exc).__name__)
        logger.debug("tool %s traceback", tool.name, exc_info=True)
        return failed(f"{tool.name} failed: {type(exc).__name__}: {exc}")

    try:
        content = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError) as exc:
        logger.warning("tool %s returned a value that is not JSON-serialisable", tool.name)
        return failed(f"{tool.name} returned a value that cannot be read: {exc}")
    return ToolResult(call_id, tool.name, content)


async def _call(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn(**kwargs)
    value = await asyncio.to_thread(fn, **kwargs)
    if inspect.isawaitable(value):  # a sync callable that hands back a coroutine
        value = await value
    return value


async def invoke_all(
    calls: Sequence[ToolCall],
    toolbox: Toolbox,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (per call, as for invoke)
    call: CallInfo | None = None,
) -> list[ToolResult]:
    """Run the tool calls of one LLM response in parallel.

    Each call gets its own timeout; a failing or slow call never cancels the others.

    Args:
        calls: The calls, in the order the LLM made them.
        toolbox: Where the called tools are looked up; an unknown name gives an error
            result that lists the available tools.
        timeout: Seconds each call may take; each tool's own ``timeout`` when None.
        call: The call they run in (see :func:`invoke`).

    Returns:
        One result per call, in call order.
    """

    async def run(request: ToolCall) -> ToolResult:
        tool = toolbox.get(request.name)
        if tool is None:
            available = ", ".join(t.name for t in toolbox) or "none"
            return ToolResult(
                request.id,
                request.name,
                f"Error: there is no tool {request.name!r}; available tools: {available}",
                True,
            )
        return await invoke(tool, request.arguments, timeout=timeout, call_id=request.id, call=call)

    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(run(request), name=f"tool {request.name} {request.id}") for request in calls
        ]
    return [
        ToolResult(request.id, request.name, f"Error: {request.name} was cancelled", True)
        if task.cancelled()
        else task.result()
        for request, task in zip(calls, tasks, strict=True)
    ]

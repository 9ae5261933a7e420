"""JSON schemas for tool parameters, from type hints and Google docstrings.

Private to :mod:`voicecore.tools`. The supported annotations are the ones an LLM can fill
in from JSON and that msgspec can validate: ``str``, ``int``, ``float``, ``bool``, ``None``,
``Optional[T]`` (``T | None``), ``Literal[...]``, ``Enum`` subclasses, ``list[T]``,
``dict[str, T]``, ``TypedDict`` and dataclasses; ``Annotated[T, ...]`` is read as ``T``.
Anything else raises :class:`~voicecore.errors.ConfigError` naming where it was found.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    is_typeddict,
)

from voicecore.errors import ConfigError

__all__ = ["Docstring", "parse_docstring", "type_schema"]

_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_SUPPORTED = (
    "use str, int, float, bool, None, Optional[T], Literal[...], an Enum, list[T], "
    "dict[str, T], a TypedDict or a dataclass"
)

_SECTION_RE = re.compile(
    r"^(Args|Arguments|Parameters|Attributes|Returns?|Raises|Yields?|Examples?|Notes?|"
    r"Warnings?|See Also|Todo|References|Keyword Args|Keyword Arguments|Other Parameters):\s*$"
)
_ENTRY_RE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


@dataclasses.dataclass(frozen=True, slots=True)
class Docstring:
    """The parts of a Google-style docstring that go into a schema.

    Attributes:
        description: Everything before the first section, paragraphs separated by a blank
            line and the lines of each paragraph joined with spaces.
        args: Per-argument descriptions from the ``Args:`` section.
        attributes: Per-field descriptions from the ``Attributes:`` section.
    """

    description: str = ""
    args: dict[str, str] = dataclasses.field(default_factory=dict)
    attributes: dict[str, str] = dataclasses.field(default_factory=dict)


def parse_docstring(doc: str | None) -> Docstring:
    """Split a Google-style docstring into its description and documented names.

    Args:
        doc: The docstring (indentation is cleaned here), or None.

    Returns:
        The description and the ``Args:`` and ``Attributes:`` entries.
    """
    if not doc:
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    paragraphs: list[list[str]] = [[]]
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        header = _SECTION_RE.match(line)
        if header:
            current = sections.setdefault(header.group(1), [])
        elif current is not None:
            current.append(line)
        elif line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    description = "\n\n".join(" ".join(p) for p in paragraphs if p)
    args = _entries(sections.get("Args", []) + sections.get("Arguments", []) + sections.get("Parameters", []))
    return Docstring(description, args, _entries(sections.get("Attributes", [])))


def _entries(lines: list[str]) -> dict[str, str]:
    """``name (type): text`` entries of a section body; deeper-indented lines continue one."""
    body = [line for line in lines if line.strip()]
    if not body:
        return {}
    indent = min(len(line) - len(line.lstrip()) for line in body)
    entries: dict[str, str] = {}
    name = None
    for line in body:
        stripped = line.strip()
        match = _ENTRY_RE.match(stripped) if len(line) - len(line.lstrip()) == indent else None
        if match:
            name = match.group(1)
            entries[name] = match.group(2)
        elif name is not None:
            entries[name] = f"{entries[name]} {stripped}".strip()
    return entries


def type_schema(tp: Any, where: str, seen: frozenset[Any] = frozenset()) -> dict[str, Any]:
    """The JSON schema of a type annotation.

    Args:
        tp: A resolved annotation (no forward-reference strings).
        where: Names the annotation in error messages, e.g. ``"parameter 'city' of tool 'weather'"``.
        seen: Object types being expanded, to reject recursive types.

    Returns:
        A fresh schema dict (the caller may add keys to it).

    Raises:
        ConfigError: The annotation, or a type inside it, is not supported.
    """
    if tp is None or tp is type(None):
        return {"type": "null"}
    if isinstance(tp, type) and tp in _PRIMITIVES:
        return {"type": _PRIMITIVES[tp]}
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Annotated:
        return type_schema(args[0], where, seen)
    if origin is Literal:
        return _enum_schema(list(args), where)
    if origin is Union or origin is types.UnionType:
        return _optional_schema(args, where, seen)
    if origin is list and len(args) == 1:
        return {"type": "array", "items": type_schema(args[0], where, seen)}
    if origin is dict and len(args) == 2:
        if args[0] is not str:
            raise ConfigError(f"{where}: dict keys must be str (JSON object keys), not {args[0]!r}")
        return {"type": "object", "additionalProperties": type_schema(args[1], where, seen)}
    if isinstance(tp, type) and origin is None:
        if issubclass(tp, enum.Enum):
            return _enum_schema([member.value for member in tp], where)
        if is_typeddict(tp) or dataclasses.is_dataclass(tp):
            return _object_schema(tp, where, seen)
    raise ConfigError(f"{where}: unsupported type annotation {_name(tp)}; {_SUPPORTED}")


def _name(tp: Any) -> str:
    return tp.__qualname__ if isinstance(tp, type) else repr(tp)


def _enum_schema(values: list[Any], where: str) -> dict[str, Any]:
    kinds = set()
    for value in values:
        if value is None:
            kinds.add("null")
        elif type(value) in _PRIMITIVES and type(value) is not float:
            kinds.add(_PRIMITIVES[type(value)])
        else:
            raise ConfigError(f"{where}: choice {value!r} is not a str, int, bool or None")
    schema: dict[str, Any] = {"enum": list(values)}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), **schema}
    return schema


def _optional_schema(args: tuple[Any, ...], where: str, seen: frozenset[Any]) -> dict[str, Any]:
    others = [arg for arg in args if arg is not type(None)]
    if len(others) != 1 or len(args) != 2:
        raise ConfigError(f"{where}: unions other than Optional[T] (T | None) are not supported")
    inner = type_schema(others[0], where, seen)
    # ["string", "null"] for simple types; anyOf keeps an object's properties apart from null.
    if isinstance(inner.get("type"), str) and inner["type"] != "object":
        inner["type"] = [inner["type"], "null"]
        if "enum" in inner and None not in inner["enum"]:
            inner["enum"].append(None)
        return inner
    return {"anyOf": [inner, {"type": "null"}]}


def _object_schema(tp: type, where: str, seen: frozenset[Any]) -> dict[str, Any]:
    if tp in seen:
        raise ConfigError(f"{where}: recursive type {tp.__qualname__} is not supported")
    seen = seen | {tp}
    try:
        hints = typing.get_type_hints(tp, include_extras=True)
    except Exception as exc:  # NameError for a forward reference, or anything the hint raises
        raise ConfigError(f"{where}: cannot resolve the type hints of {tp.__qualname__}: {exc}") from exc
    if is_typeddict(tp):
        names = list(hints)
        required = []
        for name in names:
            # __required_keys__ misses NotRequired[...] written as a string (Python 3.11 with
            # `from __future__ import annotations`), so the resolved hint decides.
            marker = get_origin(hints[name])
            if marker is Required or marker is NotRequired:
                hints[name] = get_args(hints[name])[0]
            if marker is Required or (marker is not NotRequired and name in tp.__required_keys__):  # type: ignore[attr-defined]
                required.append(name)
    else:
        fields = [f for f in dataclasses.fields(tp) if f.init]
        names = [f.name for f in fields]
        required = [
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
    doc = parse_docstring(tp.__doc__ if _has_own_docstring(tp) else None)
    properties = {}
    for name in names:
        prop = type_schema(hints[name], f"{where}, field {name!r} of {tp.__qualname__}", seen)
        if name in doc.attributes:
            prop["description"] = doc.attributes[name]
        properties[name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if doc.description:
        schema["description"] = doc.description
    return schema


def _has_own_docstring(tp: type) -> bool:
    """False for the ``Name(field: type, ...)`` docstring that @dataclass makes up."""
    doc = tp.__doc__
    return bool(doc) and not (dataclasses.is_dataclass(tp) and doc.startswith(f"{tp.__name__}("))  # type: ignore[union-attr]

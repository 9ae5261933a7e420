"""The README's table of provider names, keys and agent-file options is the registry's own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voicecore.errors import ConfigError
from voicecore.providers import registry

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| (stt|llm|tts) \| `([a-z-]+)` \| ([^|]+) \| ([^|]+) \|$", re.MULTILINE)


def documented() -> dict[tuple[str, str], tuple[str, set[str]]]:
    rows = ROW.findall(README.read_text(encoding="utf-8"))
    return {
        (role, name): (keys.strip(), set(re.findall(r"`(\w+)`", options)))
        for role, name, keys, options in rows
    }


def accepted_options(role: registry.Role, name: str) -> set[str]:
    """The options ``create`` takes, as its refusal of an unknown one lists them."""
    with pytest.raises(ConfigError, match="it takes: ") as refused:
        registry.create(role, name, {}, {"no_such_option": 1})
    return set(str(refused.value).split("it takes: ")[1].split(", "))


def test_every_cloud_and_failover_provider_is_documented_with_its_options_and_key() -> None:
    table = documented()
    local = {*registry.OFFLINE.values(), "fake"}  # documented with the offline stack and the demo
    registered = {(role, name) for role, name in registry.PROVIDERS if name not in local}
    assert set(table) == registered
    for (role, name), (keys, options) in table.items():
        assert options == accepted_options(role, name), (role, name)
        entry = registry.entry(role, name)
        if entry.keys:
            assert keys == ", ".join(f"`{k}`" for k in entry.keys), (role, name)

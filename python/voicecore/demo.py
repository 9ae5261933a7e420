"""The built-in demo agent that ``python -m voicecore serve`` runs when given no agent file."""

from __future__ import annotations

from voicecore.agent import Agent

__all__ = ["DemoAgent"]


class DemoAgent(Agent):
    """A friendly, brief assistant that greets the caller."""

    instructions = (
        "You are the voicecore demo agent: a friendly, brief voice assistant. Answer in one or two "
        "short sentences."
    )
    greeting = "Hello! This is the voicecore demo agent. Say something."

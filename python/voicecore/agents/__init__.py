"""Agent files that ship with voicecore; ``FRONT_DESK`` is the built-in demo agent."""

from __future__ import annotations

from pathlib import Path

__all__ = ["FRONT_DESK"]

FRONT_DESK = Path(__file__).with_name("front_desk.toml")
"""The offline front-desk demo agent (opening hours, address, bookings, transfer)."""

"""Tools that the sample agent files import by path."""

from __future__ import annotations

from voicecore.tools import function_tool


@function_tool
def book_table(people: int, time: str) -> str:
    """Book a table.

    Args:
        people: How many guests.
        time: When, as HH:MM.
    """
    return f"booked for {people} at {time}"


def plain_function(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city.
    """
    return f"sunny in {city}"

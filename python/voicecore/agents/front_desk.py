"""The front-desk demo agent's tool: a table booking kept in memory (a stand-in for a real system)."""

from __future__ import annotations

from voicecore.tools import function_tool

__all__ = ["book_table"]

_OPEN_HOURS = range(12, 23)


@function_tool
def book_table(people: int, time: str) -> str:
    """Book a table at Luigi's.

    Args:
        people: How many guests (1 to 12).
        time: When, as H:MM, optionally followed by am or pm (evening assumed).
    """
    if not 1 <= people <= 12:
        return "We can seat between one and twelve people; for more, please ask for the manager."
    hour_text, _, rest = time.partition(":")
    minutes_text, _, suffix = rest.partition(" ")
    try:
        hour, minutes = int(hour_text), int(minutes_text or 0)
    except ValueError:
        return f"I didn't understand the time {time!r}; say for example seven thirty."
    if suffix != "am" and hour < 12:
        hour += 12  # a restaurant's "at seven" is in the evening
    if hour not in _OPEN_HOURS:
        return "We take bookings between noon and ten at night. What other time would suit you?"
    spoken_hour = hour - 12 if hour > 12 else hour
    spoken_minutes = f":{minutes:02d}" if minutes else ""
    guests = "one person" if people == 1 else f"{people} people"
    return f"Booked: a table for {guests} at {spoken_hour}{spoken_minutes}. See you then!"

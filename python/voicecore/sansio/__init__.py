"""Pure protocol and turn logic: no sockets, no tasks, no clock.

Everything in this package is synchronous and deterministic. Objects take inputs (events,
strings, bytes) together with the current time ``now`` (seconds, any monotonic origin) and
return what to do, as values. The asyncio layer (``voicecore.runtime``) owns the clock and the
sockets and only pumps; ``tests/test_layering.py`` keeps this package free of ``asyncio``,
``socket`` and ``time``.
"""

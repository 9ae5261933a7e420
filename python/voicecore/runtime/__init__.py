"""The asyncio layer: one :class:`~voicecore.runtime.session.Session` per call, pumping only.

Decisions live in :mod:`voicecore.sansio` (turn-taking, playback truth); audio work lives in
Rust (:mod:`voicecore.audio`). This package owns the clock, the sockets' tasks and
cancellation.
"""

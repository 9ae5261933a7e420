"""The fake Twilio of the tests: :class:`voicecore.caller.TwilioCaller`, plus caller speech.

``TwilioCaller`` speaks Twilio's side of Media Streams over a real socket: ``connected`` and
``start``, the caller's audio in real-time 20 ms frames, the agent's audio played at real-time
rate with marks echoed after playback, and every pending mark echoed on ``clear``; ``stop``
on hang-up. :func:`speech` makes the caller's words with espeak-ng.
"""

from __future__ import annotations

import subprocess
from functools import cache

from voicecore.caller import TwilioCaller, ulaw_from_wav

__all__ = ["FakeTwilio", "speech"]

FakeTwilio = TwilioCaller


@cache
def speech(text: str) -> bytes:
    """``text`` spoken briskly by espeak-ng (240 words a minute), as a phone line carries it."""
    wav = subprocess.run(["espeak-ng", "-s", "240", "--stdout", text], check=True, capture_output=True).stdout
    return ulaw_from_wav(wav)

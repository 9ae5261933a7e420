"""voicecore: a low-latency voice-agent engine with a Rust audio core."""

from __future__ import annotations

from voicecore import audio, errors, text
from voicecore._core import __version__, build_profile
from voicecore.audio import *  # noqa: F403
from voicecore.errors import *  # noqa: F403
from voicecore.text import *  # noqa: F403

__all__ = ["__version__", "build_profile", *audio.__all__, *errors.__all__, *text.__all__]

"""The JSON text messages of provider WebSockets, sans I/O: one decoded object, its base64 audio.

Every streaming STT and TTS protocol here reads its server's messages the same way, so a
malformed message raises the same :class:`~voicecore.errors.ProtocolError` in each.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from voicecore.errors import ProtocolError

__all__ = ["b64_audio", "json_object"]


def json_object(text: str | bytes, provider: str) -> dict[str, Any]:
    """The JSON object in one message; raises :class:`ProtocolError` if it is not one."""
    try:
        message = msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise ProtocolError(f"{provider}: a message is not JSON", kind="json") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"{provider}: a message is not a JSON object", kind="json")
    return message


def b64_audio(data: object, provider: str) -> bytes:
    """The audio in a base64 field (empty if the field is); raises :class:`ProtocolError` if not base64."""
    if not data:
        return b""
    try:
        return base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{provider}: audio is not base64", kind="audio") from None

"""The fake Flux server (/v2/listen) is faithful: the official ``deepgram-sdk`` v2 client drives it.

The SDK is pointed at the fake through its ``environment``; it sends audio and its own
Configure / CloseStream messages, and every message the fake answers with must validate,
strictly, against the SDK's listen v2 models.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pydantic
import pytest

from tests.providers.streams import drain
from tests.providers.test_deepgram_sdk import client
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.sansio.deepgram import CLOSE_STREAM
from voicecore.sansio.deepgram_flux import configure_message

deepgram = pytest.importorskip(
    "deepgram", reason="the official SDK is a test-only dependency (the test extra)"
)
from deepgram.listen.v2.types import (  # noqa: E402
    ListenV2Configure,
    ListenV2ConfigureFailure,
    ListenV2ConfigureSuccess,
    ListenV2Connected,
    ListenV2FatalError,
    ListenV2TurnInfo,
)

# The SDK still calls websockets' legacy API, which warns; the warnings are the SDK's, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MODELS: dict[str, type[pydantic.BaseModel]] = {
    "Connected": ListenV2Connected,
    "TurnInfo": ListenV2TurnInfo,
    "ConfigureSuccess": ListenV2ConfigureSuccess,
    "ConfigureFailure": ListenV2ConfigureFailure,
    "Error": ListenV2FatalError,
}


def test_the_sdk_drives_a_flux_call_and_every_message_validates() -> None:
    async def main() -> tuple[list[Any], list[dict[str, Any]], FakeDeepgram]:
        script = [Utterance("Book a table for two.", 4000), Utterance("At eight please.", 4000, resumes=True)]
        async with FakeDeepgram(script) as server:
            async with client(server).listen.v2.connect(
                model="flux-general-en", encoding="mulaw", sample_rate="8000", eager_eot_threshold="0.5"
            ) as socket:
                await socket.send_configure({"type": "Configure", "thresholds": {"eot_threshold": 0.8}})
                await socket.send_configure({"type": "Configure", "thresholds": {"eot_threshold": 1.5}})
                for _ in range(50):
                    await socket.send_media(b"\xff" * 160)
                await socket.send_close_stream()
                raw = await drain(socket)
            parsed: list[Any] = []
            async with client(server).listen.v2.connect(model="flux-general-en") as socket:
                await socket.send_media(b"\0" * 320)
                await socket.send_close_stream()
                async for message in socket:  # the SDK's own parsing, to the close
                    parsed.append(message)
        return parsed, raw, server

    parsed, raw, server = asyncio.run(main())
    for message in raw:
        MODELS[message["type"]].model_validate(message)
    assert [m["sequence_id"] for m in raw] == list(range(len(raw)))
    kinds = [m["type"] for m in raw]
    assert kinds[:3] == ["Connected", "ConfigureSuccess", "ConfigureFailure"]
    events = [(m["event"], m["turn_index"], m["transcript"]) for m in raw if m["type"] == "TurnInfo"]
    assert events[0] == ("StartOfTurn", 0, "Book")
    eager = [e for e in events if e[0] in ("EagerEndOfTurn", "TurnResumed", "EndOfTurn")]
    assert eager == [
        ("EagerEndOfTurn", 0, "Book a table for two."),
        ("EndOfTurn", 0, "Book a table for two."),  # the same transcript as the eager one
        ("EagerEndOfTurn", 1, "At"),
        ("TurnResumed", 1, "At"),  # only after an EagerEndOfTurn
        ("EagerEndOfTurn", 1, "At eight please."),
        ("EndOfTurn", 1, "At eight please."),
    ]
    assert all(m.get("trigger") == "model" for m in raw if m.get("event") == "EndOfTurn")
    # What the SDK sends is what voicecore sends.
    controls = server.connections[0].controls
    assert controls[0] == json.loads(configure_message(eot_threshold=0.8))
    ListenV2Configure.model_validate(json.loads(configure_message(eot_threshold=0.8, keyterms=["x"])))
    assert controls[-1] == json.loads(CLOSE_STREAM)
    assert [type(m).__name__ for m in parsed] == ["ListenV2Connected"], "silence makes no turn"
    with pytest.raises(pydantic.ValidationError):  # the check can fail: the models are strict
        ListenV2TurnInfo.model_validate({"type": "TurnInfo", "event": "Update", "transcript": "x"})


def test_the_fake_fatal_error_validates_and_a_bad_key_is_401() -> None:
    async def main() -> list[dict[str, Any]]:
        async with FakeDeepgram(
            ["Hello."], close_after_bytes=320, error_code="INTERNAL_SERVER_ERROR"
        ) as server:
            with pytest.raises(deepgram.core.api_error.ApiError) as caught:
                async with client(server, api_key="wrong").listen.v2.connect(model="flux-general-en"):
                    pass
            assert caught.value.status_code == 401
            async with client(server).listen.v2.connect(
                model="flux-general-en", encoding="mulaw", sample_rate="8000"
            ) as socket:
                await socket.send_media(b"\xff" * 320)
                return await drain(socket)

    messages = asyncio.run(main())
    assert messages[-1]["type"] == "Error"
    for message in messages:
        MODELS[message["type"]].model_validate(message)

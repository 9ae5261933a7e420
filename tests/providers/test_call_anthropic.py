"""A whole call with Claude: Deepgram → Anthropic (with a tool call) → ElevenLabs, over the wire.

The same shape as ``test_call.py``; here the LLM answers the caller's question by calling a
tool first, so the second request carries the ``tool_use`` and its ``tool_result`` converted
from voicecore's history, and reads the first request's prefix back from the prompt cache.
"""

from __future__ import annotations

import asyncio

from tests.providers.calls import run_until_marks
from voicecore.fakes.anthropic import FakeAnthropic, MessageReply
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.fakes.elevenlabs import FakeElevenLabs
from voicecore.providers.anthropic import AnthropicLLM
from voicecore.providers.base import PCM16_16K
from voicecore.providers.deepgram import DeepgramSTT
from voicecore.providers.elevenlabs import ElevenLabsTTS
from voicecore.runtime.session import Session, SessionConfig
from voicecore.sansio.turn import TurnConfig
from voicecore.testing import LoopbackTransport
from voicecore.tools import Toolbox, function_tool

SECOND_OF_AUDIO = PCM16_16K.bytes_per_second


class Hours:
    """The agent's one tool."""

    def __init__(self) -> None:
        self.days: list[str] = []

    @function_tool
    async def opening_hours(self, day: str) -> str:
        """Opening hours on a day.

        Args:
            day: The day of the week.
        """
        self.days.append(day)
        return "nine to five"


def test_a_call_with_a_tool_through_claude() -> None:
    hours = Hours()

    async def main() -> tuple[LoopbackTransport, Session, FakeAnthropic, FakeElevenLabs]:
        async with (
            FakeDeepgram([Utterance("When are you open on Monday?", audio_bytes=SECOND_OF_AUDIO // 4)]) as dg,
            FakeElevenLabs() as el,
            FakeAnthropic(
                [
                    MessageReply(tool_uses=[("opening_hours", {"day": "Monday"})]),
                    MessageReply("We open at nine. We close at five."),
                ],
                api_key="sk-ant",
            ) as claude,
        ):
            transport = LoopbackTransport(PCM16_16K)
            stt = DeepgramSTT(api_key="dg-key", base_url=dg.ws_url)
            llm = AnthropicLLM(base_url=claude.base_url, api_key="sk-ant")
            tts = ElevenLabsTTS(voice_id="v", api_key="xi-key", base_url=el.ws_url)
            config = SessionConfig(
                instructions="You answer for Luigi's. " * 60,
                turn=TurnConfig(end_of_turn="stt", tool_filler_delay=5.0),
                tools=Toolbox.from_object(hours),
                call_control=False,
            )
            session = Session(config, transport=transport, stt=stt, llm=llm, tts=tts)

            await run_until_marks(session, transport)
            for provider in (stt, llm, tts):
                await provider.aclose()
        return transport, session, claude, el

    transport, session, claude, el = asyncio.run(main())
    assert hours.days == ["Monday"]
    first, second = claude.requests
    assert first["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "When are you open on Monday?",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        }
    ]
    assert [tool["name"] for tool in first["tools"]] == ["opening_hours"]
    assert first["tools"][0]["input_schema"]["required"] == ["day"]
    # The tool round: Claude's tool_use and the tool's result, in Anthropic's shape.
    call_id = second["messages"][1]["content"][0]["id"]
    assert second["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": call_id, "name": "opening_hours", "input": {"day": "Monday"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call_id,
                    "content": "nine to five",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        },
    ]
    # The tool round read the first request (tools, system, question) back from the cache.
    assert claude.usages[1]["cache_read_input_tokens"] == claude.usages[0]["cache_creation_input_tokens"] > 0
    texts = [m["text"] for m in el.connections[0].messages if m.get("text", "").strip()]
    assert texts == ["We open at nine. ", "We close at five. "]
    assert len(transport.marks_played) == 2
    assert session.history.messages()[-1] == {
        "role": "assistant",
        "content": "We open at nine. We close at five.",
    }

"""Fake provider servers that speak each provider's real wire protocol on 127.0.0.1.

They stand in for OpenAI-compatible chat completions (:mod:`voicecore.fakes.openai`, in the
OpenAI, vLLM, llama.cpp and Ollama dialects), Anthropic's Messages API
(:mod:`voicecore.fakes.anthropic`, prompt caching simulated), the OpenAI Realtime API
(:mod:`voicecore.fakes.openai_realtime`: speech heard, spoken replies, tool calls, barge-in
and truncation), Deepgram live STT and Flux
(:mod:`voicecore.fakes.deepgram`), Smallest AI Pulse STT (:mod:`voicecore.fakes.smallest_pulse`),
ElevenLabs, Cartesia and Smallest AI Lightning TTS (:mod:`voicecore.fakes.elevenlabs`,
:mod:`voicecore.fakes.cartesia`, :mod:`voicecore.fakes.smallest`) and Twilio's REST
call-update endpoint (:mod:`voicecore.fakes.twilio`), driven by scripts (replies, utterances)
and injected faults (error statuses, error events, stalls, dropped connections, close codes,
refused handshakes). voicecore's adapter tests run against them, and the providers' official
SDKs are checked against them, so they are faithful enough to test your agent without the
network (:mod:`voicecore.testing` hands them out too). ``python -m voicecore fakes`` runs
them from a script, on fixed ports if asked, for demos and load tests
(:mod:`voicecore.fakes.command`).

Each server is an async context manager that listens on an ephemeral port::

    async with FakeChatServer(["Hello!"]) as llm, FakeDeepgram(["Hi there."]) as stt:
        OpenAILLM(model="m", base_url=llm.base_url)
        DeepgramSTT(api_key="dg-key", base_url=stt.ws_url)
"""

from __future__ import annotations

from voicecore.fakes.anthropic import FakeAnthropic, MessageReply
from voicecore.fakes.cartesia import FakeCartesia
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.fakes.elevenlabs import FakeElevenLabs
from voicecore.fakes.openai import FakeChatServer, Reply
from voicecore.fakes.openai_realtime import FakeRealtime, Heard, RealtimeReply
from voicecore.fakes.server import LocalServer
from voicecore.fakes.smallest import FakeSmallestTTS
from voicecore.fakes.smallest_pulse import FakePulse
from voicecore.fakes.twilio import CallUpdate, FakeTwilioAPI

__all__ = [
    "CallUpdate",
    "FakeAnthropic",
    "FakeCartesia",
    "FakeChatServer",
    "FakeDeepgram",
    "FakeElevenLabs",
    "FakePulse",
    "FakeRealtime",
    "FakeSmallestTTS",
    "FakeTwilioAPI",
    "Heard",
    "LocalServer",
    "MessageReply",
    "RealtimeReply",
    "Reply",
    "Utterance",
]

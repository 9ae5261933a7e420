"""``serve`` with a speech-to-speech model: a Twilio call talks to the fake OpenAI Realtime server."""

from __future__ import annotations

import pytest

from tests.test_server import AGENT, GREETING, TEST_PROVIDERS, config, stream_url, until
from tests.test_server import fakes as fakes  # the `test` providers, for the STT and the fallback TTS
from tests.transports.fake_twilio import FakeTwilio
from voicecore.agent import ProviderChoice
from voicecore.audio import ulaw_encode
from voicecore.fakes.openai_realtime import FakeRealtime, Heard
from voicecore.providers import registry
from voicecore.runtime.loop import run
from voicecore.runtime.realtime_session import RealtimeSession
from voicecore.serve import banner, prepare
from voicecore.server import VoiceServer


def test_a_phone_call_talks_to_the_realtime_model_in_its_own_mulaw() -> None:
    async def main() -> None:
        heard = [Heard("What time do you open?", audio_ms=300, gap_ms=600)]
        async with FakeRealtime(heard, [GREETING, "We open at nine."]) as model:
            providers = TEST_PROVIDERS | {
                "llm": ProviderChoice("openai-realtime", {"base_url": f"{model.ws_url}/v1"})
            }
            serve_config = config(keys={"OPENAI_API_KEY": "sk-test"})
            server = VoiceServer(serve_config, AGENT, providers)
            await server.start()
            try:
                async with FakeTwilio(stream_url(server)) as call:
                    await until(lambda: bool(server.calls))
                    session = next(iter(server.calls.values())).session
                    assert isinstance(session, RealtimeSession)
                    await until(
                        lambda: len(call.played) >= 8 * 10 * (len(GREETING) + len("We open at nine."))
                    )
                    await until(lambda: bool(call.marks) and len(session.history.messages()) >= 4)
                await until(lambda: not server.calls)
            finally:
                await server.shutdown(drain_timeout=0)
        connection = model.connections[0]
        assert connection.session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        # The caller's μ-law frames reach the model untouched (silence is 0xFF in μ-law).
        assert set(connection.audio) == set(ulaw_encode(bytes(2)))
        assert set(call.played) != {0xFF}
        messages = [(m["role"], m["content"]) for m in session.history.messages()[1:]]
        assert messages == [
            ("assistant", GREETING),
            ("user", "What time do you open?"),
            ("assistant", "We open at nine."),
        ]

    run(main())


def test_the_realtime_model_needs_an_openai_key_and_refuses_a_failover_list() -> None:
    assert registry.required_keys("llm", "openai-realtime", {}) == ("OPENAI_API_KEY",)
    options = {"providers": ["openai-realtime", "openai"]}
    with pytest.raises(ValueError, match="speech-to-speech"):
        registry.create("llm", "failover", {"OPENAI_API_KEY": "k"}, options)


def test_the_banner_says_the_stt_is_unused_with_a_speech_to_speech_model() -> None:
    environ = {"VOICECORE_LLM": "openai-realtime", "OPENAI_API_KEY": "sk-test", "VOICECORE_PORT": "0"}
    prepared = prepare(environ=environ)
    text = banner(prepared, ["http://127.0.0.1:8080"])
    assert "llm: openai-realtime (OpenAI Realtime speech to speech" in text
    assert "the stt is unused" in text
    assert "the stt is unused" not in banner(prepare(environ={"VOICECORE_PORT": "0"}), [])

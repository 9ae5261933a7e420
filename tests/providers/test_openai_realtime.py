"""OpenAIRealtime against the fake Realtime server: connecting, configuring, events, failures."""

from __future__ import annotations

import pytest

from voicecore.errors import ConfigError, ProviderConnectionError, ProviderStatusError, ProviderStreamError
from voicecore.fakes.openai_realtime import FakeRealtime
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioFormat, RealtimeModel
from voicecore.providers.openai_realtime import OpenAIRealtime
from voicecore.runtime.loop import run
from voicecore.sansio import openai_realtime as rt


def model(server: FakeRealtime, **options: object) -> OpenAIRealtime:
    return OpenAIRealtime(api_key="sk-test", base_url=f"{server.ws_url}/v1", **options)  # type: ignore[arg-type]


def test_it_is_a_realtime_model_that_keeps_a_phone_calls_mulaw() -> None:
    realtime = OpenAIRealtime(api_key="k")
    assert isinstance(realtime, RealtimeModel)
    assert realtime.audio_format(MULAW_8K) == MULAW_8K
    assert realtime.audio_format(AudioFormat("alaw", 8000)) == AudioFormat("alaw", 8000)
    assert realtime.audio_format(PCM16_16K) == AudioFormat("pcm16", 24000)


def test_unknown_or_bad_options_are_refused_when_it_is_made() -> None:
    with pytest.raises(ConfigError, match=r"it takes: .*silence_ms"):
        OpenAIRealtime(api_key="k", silence=3)
    with pytest.raises(ConfigError, match="speed"):
        OpenAIRealtime(api_key="k", speed=9.0)
    with pytest.raises(ConfigError, match="connect_timeout"):
        OpenAIRealtime(api_key="k", connect_timeout=0)


def test_connect_configures_the_session_before_returning() -> None:
    async def main() -> tuple[dict[str, object], dict[str, object]]:
        async with FakeRealtime() as server:
            realtime = model(server, model="gpt-realtime-mini", voice="cedar", silence_ms=350)
            try:
                settings = realtime.settings(
                    instructions="Hi.", tools=[], audio_format=MULAW_8K, language="de", voice=None
                )
                connection = await realtime.connect(settings)
                await connection.aclose()
            finally:
                await realtime.aclose()
            return dict(connection.session), server.connections[0].query

    session, query = run(main())
    assert query == {"model": "gpt-realtime-mini"}
    assert session["instructions"] == "Hi."
    assert session["audio"]["output"]["voice"] == "cedar"  # type: ignore[index]
    assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 350  # type: ignore[index]
    assert session["audio"]["input"]["transcription"]["language"] == "de"  # type: ignore[index]


def test_a_wrong_key_fails_the_handshake_for_good() -> None:
    async def main() -> None:
        async with FakeRealtime(api_key="sk-right") as server:
            realtime = model(server)
            try:
                await realtime.connect(rt.RealtimeSettings())
            finally:
                await realtime.aclose()

    with pytest.raises(ProviderStatusError) as failed:
        run(main())
    assert failed.value.status == 401
    assert not failed.value.retryable


def test_refused_settings_fail_the_configuration_naming_the_field() -> None:
    async def main() -> None:
        async with FakeRealtime() as server:
            realtime = model(server)
            try:
                connection = await realtime.connect(rt.RealtimeSettings())
                try:
                    await connection.configure({"type": "session.update", "session": {"type": "other"}}, 5.0)
                finally:
                    await connection.aclose()
            finally:
                await realtime.aclose()

    with pytest.raises(ProviderStreamError, match=r"session\.type") as refused:
        run(main())
    assert not refused.value.retryable


def test_events_stream_until_the_socket_is_lost() -> None:
    async def main() -> list[object]:
        seen: list[object] = []
        async with FakeRealtime([], ["Hello."], drop_after_responses=1) as server:
            realtime = model(server)
            try:
                connection = await realtime.connect(rt.RealtimeSettings())
                await connection.send(rt.create_response(purpose="greeting"))

                async def collect() -> None:
                    async for event in connection:
                        seen.append(event)

                with pytest.raises(ProviderConnectionError, match="1011"):
                    await collect()
                assert connection.closed
                await connection.send(rt.cancel_response())  # a lost socket drops sends quietly
                await connection.send_audio(b"\xff" * 160)
            finally:
                await realtime.aclose()
        return seen

    seen = run(main())
    kinds = [type(event).__name__ for event in seen]
    assert kinds[0] == "ResponseStarted"
    assert "AgentAudio" in kinds
    assert "AgentTranscript" in kinds
    assert kinds[-1] == "ResponseDone"

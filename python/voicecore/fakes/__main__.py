"""``python -m voicecore.fakes``: run the fake providers on 127.0.0.1 until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from voicecore.fakes import FakeChatServer, FakeDeepgram, FakeElevenLabs, Reply


async def serve(reply: str, utterance: str) -> None:
    """Start the three fakes, print how to point clients at them, and wait."""
    async with (
        FakeChatServer([Reply(reply)]) as llm,
        FakeDeepgram([utterance], api_key=None) as stt,
        FakeElevenLabs(api_key=None) as tts,
    ):
        print(f"OpenAI-compatible LLM:  OpenAILLM(model='fake', base_url='{llm.base_url}')")
        print(f"Deepgram STT:           DeepgramSTT(base_url='{stt.ws_url}')")
        print(f"ElevenLabs TTS:         ElevenLabsTTS(voice_id='fake', base_url='{tts.ws_url}')")
        print("Ctrl-C stops them.", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and run the fakes."""
    parser = argparse.ArgumentParser(prog="python -m voicecore.fakes", description=__doc__)
    parser.add_argument(
        "--reply", default="Hello! This is a fake language model.", help="what the LLM answers"
    )
    parser.add_argument("--utterance", default="Hello there.", help="what the STT hears")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.reply, args.utterance))


if __name__ == "__main__":
    main()

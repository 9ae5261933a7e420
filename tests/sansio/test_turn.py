"""The turn-taking state machine as tables of ``(now, event) -> actions``; no clock, no loop."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore.errors import ConfigError
from voicecore.sansio.turn import (
    Action,
    BeepHeard,
    CallEnded,
    CallStarted,
    CancelReply,
    ClearPlayback,
    CommitHeard,
    ConfirmReply,
    Dtmf,
    EndCall,
    Event,
    FinalizeTranscript,
    PlaybackIdle,
    ReplyAudioStarted,
    ReplyDone,
    ReplyFailed,
    ResumeReply,
    Say,
    SpeechEnded,
    SpeechStarted,
    StartReply,
    ToolsFinished,
    ToolsStarted,
    Transcript,
    TurnConfig,
    TurnMachine,
)

Tick = Literal["tick"]
Step = tuple[float, Event | Tick, list[Action]]


def play(machine: TurnMachine, steps: list[Step]) -> None:
    """Feeds each step and checks the actions it produced, step by step."""
    for now, event, expected in steps:
        got = machine.tick(now) if event == "tick" else machine.handle(event, now)
        assert got == expected, f"at {now}: {event}"


def caller_turn(start: float, text: str) -> list[Step]:
    """A caller turn that ends by VAD and STT together, as Deepgram and the VAD report it."""
    return [
        (start, SpeechStarted(), []),
        (start + 0.3, Transcript(text, final=False), []),
        (start + 1.0, SpeechEnded(), [FinalizeTranscript()]),
    ]


def speaking_agent(config: TurnConfig | None = None) -> TurnMachine:
    """A machine in reply 1, whose audio is playing."""
    machine = TurnMachine(config)
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            *caller_turn(1.0, "what's the weather"),
            (
                2.1,
                Transcript("what's the weather", final=True, end_of_turn=True),
                [StartReply(1, "what's the weather")],
            ),
            (2.6, ReplyAudioStarted(1), []),
        ],
    )
    return machine


def test_greeting_on_connect() -> None:
    play(
        TurnMachine(TurnConfig(greeting="Hi, how can I help?")),
        [(0.0, CallStarted(), [Say("Hi, how can I help?", "greeting")])],
    )


def test_both_policy_waits_for_vad_end_and_stt_final() -> None:
    machine = TurnMachine()
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            (1.0, SpeechStarted(), []),
            (1.2, Transcript("book a table", final=True, end_of_turn=True), []),  # VAD still hears speech
            (1.9, SpeechEnded(), [FinalizeTranscript(), StartReply(1, "book a table")]),
        ],
    )


def test_vad_policy_uses_the_interim_text_when_no_final_comes() -> None:
    machine = TurnMachine(TurnConfig(end_of_turn="vad", final_timeout=0.5))
    play(machine, [(0.0, CallStarted(), []), *caller_turn(1.0, "hello there")])
    assert machine.next_deadline() == pytest.approx(2.5)
    play(machine, [(2.4, "tick", []), (2.5, "tick", [StartReply(1, "hello there")])])


def test_stt_policy_ends_on_the_stt_endpoint_alone() -> None:
    machine = TurnMachine(TurnConfig(end_of_turn="stt"))
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            (1.0, SpeechStarted(), []),
            (1.5, Transcript("yes please", final=True), []),
            (1.6, Transcript("", final=True, end_of_turn=True), [StartReply(1, "yes please")]),
        ],
    )


def test_finals_accumulate_across_pauses_within_a_turn() -> None:
    machine = TurnMachine()
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            (1.0, SpeechStarted(), []),
            (1.5, Transcript("I'd like", final=True), []),
            (1.8, SpeechEnded(), [FinalizeTranscript()]),
            (2.0, SpeechStarted(), []),  # a short hesitation, then more
            (2.6, SpeechEnded(), [FinalizeTranscript()]),
            (
                2.7,
                Transcript("two tickets", final=True, end_of_turn=True),
                [StartReply(1, "I'd like two tickets")],
            ),
        ],
    )


def test_words_barge_in_clears_audio_cancels_and_keeps_heard_text() -> None:
    machine = speaking_agent()
    play(
        machine,
        [
            (5.0, SpeechStarted(), []),
            (5.1, Transcript("wait", final=False), []),  # too early: under barge_in_min_speech
            (
                5.3,
                Transcript("wait stop", final=False),
                [ClearPlayback(), CancelReply(1, "barge-in"), CommitHeard(1)],
            ),
        ],
    )
    assert not machine.agent_audible


def test_a_backchannel_neither_interrupts_nor_starts_a_turn() -> None:
    machine = speaking_agent()
    play(
        machine,
        [
            (5.0, SpeechStarted(), []),
            (5.3, Transcript("uh-huh", final=False), []),
            (5.5, Transcript("Uh-huh.", final=True, end_of_turn=True), []),
            (5.6, SpeechEnded(), [FinalizeTranscript()]),
            (6.0, ReplyDone(1), []),
            (7.0, PlaybackIdle(), []),
        ],
    )
    assert machine.reply_turn is None


def test_long_speech_without_words_interrupts() -> None:
    machine = speaking_agent(TurnConfig(barge_in_max_speech=0.8))
    play(machine, [(5.0, SpeechStarted(), [])])
    assert machine.next_deadline() == pytest.approx(5.8)
    play(machine, [(5.8, "tick", [ClearPlayback(), CancelReply(1, "barge-in"), CommitHeard(1)])])


def test_vad_only_barge_in_when_no_words_are_required() -> None:
    machine = speaking_agent(TurnConfig(barge_in_min_words=0, barge_in_min_speech=0.2))
    play(
        machine,
        [
            (5.0, SpeechStarted(), []),
            (5.2, "tick", [ClearPlayback(), CancelReply(1, "barge-in"), CommitHeard(1)]),
        ],
    )


def test_false_interruption_resumes_the_cut_reply() -> None:
    machine = speaking_agent(TurnConfig(barge_in_max_speech=0.8, false_interruption_timeout=1.5))
    play(
        machine,
        [
            (5.0, SpeechStarted(), []),  # a cough
            (5.8, "tick", [ClearPlayback(), CancelReply(1, "barge-in"), CommitHeard(1)]),
            (6.0, SpeechEnded(), [FinalizeTranscript()]),
            (6.2, Transcript("", final=True), []),
            (7.4, "tick", []),
            (7.5, "tick", [ResumeReply(1)]),
        ],
    )
    assert machine.agent_audible


def test_interruption_with_words_is_not_resumed_and_starts_a_turn() -> None:
    machine = speaking_agent()
    play(
        machine,
        [
            (5.0, SpeechStarted(), []),
            (
                5.4,
                Transcript("no I meant Paris", final=False),
                [ClearPlayback(), CancelReply(1, "barge-in"), CommitHeard(1)],
            ),
            (6.0, SpeechEnded(), [FinalizeTranscript()]),
            (
                6.1,
                Transcript("no I meant Paris", final=True, end_of_turn=True),
                [StartReply(2, "no I meant Paris")],
            ),
            (9.0, "tick", [Say("One moment.", "filler")]),
        ],
    )


def test_latency_budget_filler_then_fallback() -> None:
    machine = TurnMachine(TurnConfig(filler_after=1.5, turn_timeout=10.0))
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            *caller_turn(1.0, "question"),
            (2.0, Transcript("question", final=True, end_of_turn=True), [StartReply(1, "question")]),
            (3.4, "tick", []),
            (3.5, "tick", [Say("One moment.", "filler")]),
            (7.0, PlaybackIdle(), []),  # the filler played; still no reply audio
            (12.0, "tick", [CancelReply(1, "timeout"), Say("Sorry, could you repeat that?", "fallback")]),
        ],
    )
    assert machine.reply_turn is None


def test_reply_audio_in_budget_means_no_filler() -> None:
    machine = speaking_agent()
    play(machine, [(4.0, "tick", []), (20.0, "tick", [])])


def test_provider_failure_is_never_silence() -> None:
    machine = TurnMachine()
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            *caller_turn(1.0, "hi"),
            (2.0, Transcript("hi", final=True, end_of_turn=True), [StartReply(1, "hi")]),
            (2.3, ReplyFailed(1, "llm 500"), [Say("Sorry, could you repeat that?", "fallback")]),
        ],
    )


def test_slow_tools_get_a_varied_filler_and_fast_tools_none() -> None:
    machine = TurnMachine(TurnConfig(tool_filler_delay=0.6, filler_after=5.0))
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            *caller_turn(1.0, "check my order"),
            (
                2.0,
                Transcript("check my order", final=True, end_of_turn=True),
                [StartReply(1, "check my order")],
            ),
            (2.2, ToolsStarted(1, spoke_content=False), []),
            (2.5, ToolsFinished(1), []),  # fast: no filler
            (2.6, ToolsStarted(1, spoke_content=False), []),
            (3.2, "tick", [Say("One moment.", "filler")]),
            (4.0, ToolsFinished(1), []),
            (4.1, ToolsStarted(1, spoke_content=False), []),
            (4.7, "tick", [Say("Let me check that.", "filler")]),  # not the same phrase twice
        ],
    )


def test_tools_after_spoken_content_need_no_filler() -> None:
    machine = TurnMachine(TurnConfig(tool_filler_delay=0.6))
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            *caller_turn(1.0, "check my order"),
            (
                2.0,
                Transcript("check my order", final=True, end_of_turn=True),
                [StartReply(1, "check my order")],
            ),
            (2.3, ReplyAudioStarted(1), []),
            (2.4, ToolsStarted(1, spoke_content=True), []),
            (4.0, "tick", []),
        ],
    )


def test_caller_continuing_before_the_reply_is_heard_merges_the_turn() -> None:
    machine = TurnMachine()
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            *caller_turn(1.0, "I want to"),
            (2.0, Transcript("I want to", final=True, end_of_turn=True), [StartReply(1, "I want to")]),
            (2.2, SpeechStarted(), []),
            (2.6, Transcript("book a flight", final=False), [CancelReply(1, "continued")]),
            (3.0, SpeechEnded(), [FinalizeTranscript()]),
            (
                3.1,
                Transcript("book a flight", final=True, end_of_turn=True),
                [StartReply(2, "I want to book a flight", replaces=1)],
            ),
        ],
    )


def test_idle_prompts_after_playback_then_goodbye() -> None:
    machine = TurnMachine(TurnConfig(greeting="Hello!", idle_after=8.0, idle_prompts=1))
    play(
        machine,
        [
            (0.0, CallStarted(), [Say("Hello!", "greeting")]),
            (1.0, "tick", []),  # still playing: silence is not idleness yet
            (2.0, PlaybackIdle(), []),
            (9.9, "tick", []),
            (10.0, "tick", [Say("Are you still there?", "idle")]),
            (11.0, PlaybackIdle(), []),
            (19.0, "tick", [Say("Thank you for calling. Goodbye.", "goodbye"), EndCall("idle")]),
            (30.0, "tick", []),
        ],
    )
    assert machine.next_deadline() is None


def test_caller_speech_resets_the_idle_timer() -> None:
    machine = TurnMachine(TurnConfig(idle_after=8.0))
    play(machine, [(0.0, CallStarted(), []), (7.0, SpeechStarted(), []), (9.0, "tick", [])])


def test_max_call_duration_says_goodbye_over_anything() -> None:
    machine = speaking_agent(TurnConfig(max_call_duration=60.0))
    play(
        machine,
        [
            (
                60.0,
                "tick",
                [
                    CancelReply(1, "ended"),
                    ClearPlayback(),
                    Say("Thank you for calling. Goodbye.", "goodbye"),
                    EndCall("max-duration"),
                ],
            ),
            (61.0, SpeechStarted(), []),
        ],
    )


def test_dtmf_digits_become_a_turn_when_enabled() -> None:
    machine = TurnMachine(TurnConfig(dtmf_as_input=True))
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            (1.0, Dtmf("4"), []),
            (1.2, Dtmf("2"), []),
            (1.4, Dtmf("#"), [StartReply(1, "DTMF 42")]),
        ],
    )
    play(TurnMachine(), [(0.0, CallStarted(), []), (1.0, Dtmf("#"), [])])


def test_call_end_cancels_the_reply_and_silences_the_machine() -> None:
    machine = speaking_agent()
    play(
        machine,
        [(3.0, CallEnded(), [CancelReply(1, "ended")]), (4.0, SpeechStarted(), []), (5.0, "tick", [])],
    )


def test_stale_progress_of_a_cancelled_reply_is_ignored() -> None:
    machine = speaking_agent()
    play(
        machine,
        [
            (5.0, SpeechStarted(), []),
            (
                5.4,
                Transcript("stop stop", final=False),
                [ClearPlayback(), CancelReply(1, "barge-in"), CommitHeard(1)],
            ),
            (5.5, ReplyAudioStarted(1), []),
            (5.6, ReplyFailed(1, "cancelled"), []),
        ],
    )
    assert not machine.agent_audible


VOICEMAIL = "Hi, this is Luigi's about your booking. Please call us back."


@pytest.mark.parametrize("verdict", ["machine_end_beep", "machine_end_silence", "machine_end_other"])
def test_a_machine_past_its_beep_gets_the_message_at_once_and_no_greeting(verdict: str) -> None:
    machine = TurnMachine(TurnConfig(greeting="Hello!", voicemail=VOICEMAIL))
    play(
        machine,
        [
            (0.0, CallStarted(answered_by=verdict), [Say(VOICEMAIL, "voicemail"), EndCall("voicemail")]),
            # Whatever the machine plays, nothing interrupts the message or answers it.
            (0.5, SpeechStarted(), []),
            (0.9, Transcript("please leave a message", final=True, end_of_turn=True), []),
            (2.0, "tick", []),
        ],
    )
    assert machine.next_deadline() is None


def test_a_machine_mid_greeting_gets_the_message_once_it_has_been_quiet() -> None:
    machine = TurnMachine(TurnConfig(greeting="Hello!", voicemail=VOICEMAIL, voicemail_silence=1.2))
    play(
        machine,
        [
            (0.0, CallStarted(answered_by="machine_start"), []),
            (0.2, SpeechStarted(), []),
            (2.0, Transcript("you have reached the Smiths", final=False), []),
            (3.5, SpeechEnded(), []),
            (
                3.6,
                Transcript("you have reached the Smiths leave a message", final=True, end_of_turn=True),
                [],
            ),
            (4.0, SpeechStarted(), []),  # the beep
            (4.5, SpeechEnded(), []),
        ],
    )
    assert machine.next_deadline() == pytest.approx(5.7)
    play(machine, [(5.6, "tick", []), (5.7, "tick", [Say(VOICEMAIL, "voicemail"), EndCall("voicemail")])])
    assert machine.next_deadline() is None


def test_a_beep_ends_a_machines_greeting_at_once() -> None:
    machine = TurnMachine(TurnConfig(voicemail=VOICEMAIL, voicemail_silence=1.2))
    play(machine, [(0.0, CallStarted(answered_by="machine_start"), []), (0.1, SpeechStarted(), [])])
    assert machine.awaiting_beep
    play(
        machine,
        [
            (3.0, SpeechEnded(), []),
            (3.3, BeepHeard(), [Say(VOICEMAIL, "voicemail"), EndCall("voicemail")]),
            (3.4, BeepHeard(), []),
        ],
    )
    assert not machine.awaiting_beep


def test_a_beep_means_nothing_on_a_call_with_a_person() -> None:
    machine = TurnMachine(TurnConfig(voicemail=VOICEMAIL))
    play(machine, [(0.0, CallStarted(answered_by="human"), []), (1.0, BeepHeard(), [])])
    assert not machine.awaiting_beep


def test_a_machine_greeting_that_ended_before_the_verdict_counts_as_silence() -> None:
    machine = TurnMachine(TurnConfig(voicemail=VOICEMAIL, voicemail_silence=1.0))
    play(machine, [(0.0, CallStarted(answered_by="machine_start"), [])])
    assert machine.next_deadline() == pytest.approx(1.0)
    play(machine, [(1.0, "tick", [Say(VOICEMAIL, "voicemail"), EndCall("voicemail")])])


def test_a_machine_that_never_stops_talking_gets_the_message_at_the_deadline() -> None:
    machine = TurnMachine(TurnConfig(voicemail=VOICEMAIL, voicemail_wait=20.0))
    play(machine, [(0.0, CallStarted(answered_by="machine_start"), []), (0.1, SpeechStarted(), [])])
    assert machine.next_deadline() == pytest.approx(20.0)
    play(machine, [(19.9, "tick", []), (20.0, "tick", [Say(VOICEMAIL, "voicemail"), EndCall("voicemail")])])


@pytest.mark.parametrize(
    ("verdict", "voicemail"),
    [("machine_start", None), ("machine_end_beep", None), ("fax", None), ("fax", VOICEMAIL)],
)
def test_machines_without_a_message_and_faxes_are_hung_up_on_in_silence(
    verdict: str, voicemail: str | None
) -> None:
    machine = TurnMachine(TurnConfig(greeting="Hello!", voicemail=voicemail))
    play(machine, [(0.0, CallStarted(answered_by=verdict), [EndCall("machine")]), (1.0, SpeechStarted(), [])])
    assert machine.next_deadline() is None


@pytest.mark.parametrize("verdict", [None, "human", "unknown"])
def test_a_person_or_no_verdict_gets_the_ordinary_call(verdict: str | None) -> None:
    machine = TurnMachine(TurnConfig(greeting="Hello!", voicemail=VOICEMAIL))
    play(machine, [(0.0, CallStarted(answered_by=verdict), [Say("Hello!", "greeting")])])


def test_hanging_up_while_the_machine_talks_ends_the_wait() -> None:
    machine = TurnMachine(TurnConfig(voicemail=VOICEMAIL))
    play(machine, [(0.0, CallStarted(answered_by="machine_start"), []), (0.5, CallEnded(), [])])
    assert machine.next_deadline() is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"end_of_turn": "whenever"}, "end_of_turn"),
        ({"final_timeout": -1.0}, "final_timeout"),
        ({"turn_timeout": 1.0, "filler_after": 2.0}, "turn_timeout"),
        ({"fillers": ()}, "fillers"),
        ({"idle_after": float("nan")}, "idle_after"),
        ({"voicemail_silence": -0.5}, "voicemail_silence"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TurnConfig(**kwargs)  # type: ignore[arg-type]


_events = st.one_of(
    st.just(SpeechStarted()),
    st.just(SpeechEnded()),
    st.builds(Transcript, st.sampled_from(["", "yeah", "hello there", "stop"]), st.booleans(), st.booleans()),
    st.builds(ReplyAudioStarted, st.integers(1, 3)),
    st.builds(ReplyDone, st.integers(1, 3)),
    st.builds(ReplyFailed, st.integers(1, 3), st.just("x")),
    st.builds(ToolsStarted, st.integers(1, 3), st.booleans()),
    st.builds(ToolsFinished, st.integers(1, 3)),
    st.just(PlaybackIdle()),
    st.just(BeepHeard()),
    st.just("tick"),
)


@given(
    st.sampled_from([None, "human", "machine_start"]),
    st.lists(st.tuples(st.floats(0.0, 3.0), _events), max_size=40),
)
def test_deadlines_always_lie_ahead_after_a_tick(
    verdict: str | None, script: list[tuple[float, Event | Tick]]
) -> None:
    """Whatever happens, a tick leaves no deadline in the past (the pump can never spin)."""
    machine = TurnMachine(TurnConfig(greeting="Hi", voicemail="Call us back.", voicemail_wait=5.0))
    now = 0.0
    machine.handle(CallStarted(answered_by=verdict), now)
    for gap, event in script:
        now += gap
        if event == "tick":
            machine.tick(now)
        else:
            machine.handle(event, now)
        deadline = machine.next_deadline()
        if deadline is not None and deadline <= now:
            machine.tick(now)
            later = machine.next_deadline()
            assert later is None or later > now


def speculative_machine() -> TurnMachine:
    machine = TurnMachine(TurnConfig(end_of_turn="both", speculative_after=0.2, final_timeout=2.0))
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            (1.0, SpeechStarted(), []),
            (1.4, Transcript("book a table", final=False), []),
            # The interim has been stable since 1.4: the reply starts at the end of speech.
            (2.0, SpeechEnded(), [FinalizeTranscript(), StartReply(1, "book a table", speculative=True)]),
        ],
    )
    return machine


def test_speculative_start_on_a_stable_interim_is_confirmed_by_a_matching_final() -> None:
    machine = TurnMachine(TurnConfig(speculative_after=0.5, final_timeout=2.0))
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            (1.0, SpeechStarted(), []),
            (1.7, Transcript("book a table", final=False), []),
            (2.0, SpeechEnded(), [FinalizeTranscript()]),
        ],
    )
    assert machine.next_deadline() == pytest.approx(2.2)
    play(
        machine,
        [
            (2.2, "tick", [StartReply(1, "book a table", speculative=True)]),
            (2.5, Transcript("Book a table.", final=True, end_of_turn=True), [ConfirmReply(1)]),
        ],
    )
    assert machine.reply_turn == 1


def test_speculation_that_misses_restarts_on_the_final_text() -> None:
    machine = speculative_machine()
    assert machine.reply_turn == 1
    play(
        machine,
        [
            (
                2.3,
                Transcript("book a table for two", final=True, end_of_turn=True),
                [CancelReply(1, "speculation-missed"), StartReply(2, "book a table for two")],
            ),
        ],
    )


def test_caller_continuing_cancels_a_speculative_reply_without_repeating_its_text() -> None:
    machine = speculative_machine()
    play(
        machine,
        [
            (2.2, SpeechStarted(), []),
            (2.5, Transcript("book a table for two", final=False), [CancelReply(1, "continued")]),
            (
                3.0,
                SpeechEnded(),
                [FinalizeTranscript(), StartReply(2, "book a table for two", speculative=True)],
            ),
            (3.1, Transcript("book a table for two", final=True, end_of_turn=True), [ConfirmReply(2)]),
        ],
    )


def test_speculation_is_off_by_default() -> None:
    machine = TurnMachine()
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            (1.0, SpeechStarted(), []),
            (1.4, Transcript("book a table", final=False), []),
            (2.0, SpeechEnded(), [FinalizeTranscript()]),
            (2.5, "tick", []),
        ],
    )


def test_backchannels_follow_the_language_unless_customised() -> None:
    assert "vale" in TurnConfig().for_language("es-ES").backchannels
    assert "genau" in TurnConfig().for_language("de").backchannels
    assert TurnConfig().for_language("xx").backchannels == TurnConfig().backchannels
    custom = TurnConfig(backchannels=frozenset({"roger"}))
    assert custom.for_language("es").backchannels == frozenset({"roger"})


def test_an_early_word_still_interrupts_once_the_minimum_speech_has_passed() -> None:
    machine = speaking_agent(TurnConfig(barge_in_min_speech=0.25, barge_in_max_speech=1.0))
    play(
        machine,
        [
            (5.0, SpeechStarted(), []),
            (5.1, Transcript("stop", final=False), []),  # a word, but too soon to trust
        ],
    )
    assert machine.next_deadline() == pytest.approx(5.25)  # not 6.0 (the words-free limit)
    play(machine, [(5.25, "tick", [ClearPlayback(), CancelReply(1, "barge-in"), CommitHeard(1)])])


def test_no_fallback_over_a_caller_who_is_talking_again() -> None:
    machine = TurnMachine(TurnConfig(filler_after=1.5, turn_timeout=4.0))
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            *caller_turn(1.0, "question"),
            (2.0, Transcript("question", final=True, end_of_turn=True), [StartReply(1, "question")]),
            (3.5, "tick", [Say("One moment.", "filler")]),
            (4.0, PlaybackIdle(), []),
            (5.0, SpeechStarted(), []),  # the caller goes on while the reply is still missing
            (6.0, "tick", [CancelReply(1, "timeout")]),
        ],
    )
    deadline = machine.next_deadline()
    assert deadline is None or deadline > 6.0


def test_regression_a_fallback_said_while_the_caller_speaks_leaves_no_past_deadline() -> None:
    # Found by hypothesis: the turn timeout said the fallback over a caller speaking for over
    # barge_in_max_speech, leaving a barge-in deadline in the past after the tick.
    machine = TurnMachine(TurnConfig(greeting="Hi"))
    machine.handle(CallStarted(), 0.0)
    steps: list[tuple[float, Event]] = [
        (0.0, SpeechStarted()),
        (2.0, ReplyAudioStarted(1)),
        (2.0, SpeechEnded()),
        (3.5, Transcript("yeah", final=False)),
        (5.0, SpeechStarted()),
        (8.0, SpeechStarted()),
        (10.86, SpeechStarted()),
        (13.86, Transcript("", final=False)),
    ]
    for now, event in steps:
        machine.handle(event, now)
        deadline = machine.next_deadline()
        if deadline is not None and deadline <= now:
            machine.tick(now)
            later = machine.next_deadline()
            assert later is None or later > now, (now, event)


def eager_machine(end_of_turn: Literal["vad", "stt", "both"] = "stt") -> TurnMachine:
    """A caller turn up to an eager end of turn, as Deepgram Flux reports one."""
    machine = TurnMachine(TurnConfig(end_of_turn=end_of_turn))
    play(
        machine,
        [
            (0.0, CallStarted(), []),
            (1.0, SpeechStarted(), []),
            (1.3, Transcript("book", final=False), []),
            (1.8, Transcript("book a table", final=False), []),
            (
                2.0,
                Transcript("book a table", final=False, eager=True),
                [StartReply(1, "book a table", speculative=True)],
            ),
        ],
    )
    return machine


def test_an_eager_end_of_turn_starts_a_speculative_reply_that_the_end_of_turn_confirms() -> None:
    machine = eager_machine()  # speculative_after is off: the STT's eager event is the switch
    play(
        machine,
        [
            # An Update with the same words while the VAD is still in its hangover: not "more".
            (2.05, Transcript("book a table", final=False), []),
            (2.1, SpeechEnded(), [FinalizeTranscript()]),
            (2.4, Transcript("Book a table.", final=True, end_of_turn=True), [ConfirmReply(1)]),
        ],
    )
    assert machine.reply_turn == 1


def test_a_turn_resumed_after_an_eager_end_cancels_the_reply_once_new_words_come() -> None:
    machine = eager_machine()
    play(
        machine,
        [
            (2.2, Transcript("book a table", final=False), []),  # TurnResumed: same words so far
            (2.5, Transcript("book a table for two", final=False), [CancelReply(1, "continued")]),
            (
                3.0,
                Transcript("book a table for two", final=False, eager=True),
                [StartReply(2, "book a table for two", speculative=True)],
            ),
            (3.3, Transcript("book a table for two", final=True, end_of_turn=True), [ConfirmReply(2)]),
        ],
    )


def test_an_eager_reply_whose_final_text_differs_restarts_on_the_final_text() -> None:
    machine = eager_machine()
    play(
        machine,
        [
            (
                2.4,
                Transcript("Book a cable.", final=True, end_of_turn=True),
                [CancelReply(1, "speculation-missed"), StartReply(2, "Book a cable.")],
            ),
        ],
    )


def test_an_eager_end_of_turn_waits_while_the_agent_speaks() -> None:
    machine = TurnMachine(TurnConfig(end_of_turn="stt", greeting="Hi", barge_in_min_words=3))
    play(
        machine,
        [
            (0.0, CallStarted(), [Say("Hi", "greeting")]),
            (0.5, Transcript("yes", final=False, eager=True), []),
        ],
    )

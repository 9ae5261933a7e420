"""Choosing the event loop: uvloop when installed, unless VOICECORE_LOOP says otherwise."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from voicecore.errors import ConfigError
from voicecore.runtime.loop import FULL_COLLECTION_EVERY, EndedCalls, loop_name, run, settle_heap


def test_env_chooses_the_loop() -> None:
    assert loop_name({"VOICECORE_LOOP": "asyncio"}) == "asyncio"
    with pytest.raises(ConfigError, match="VOICECORE_LOOP"):
        loop_name({"VOICECORE_LOOP": "trio"})


def test_uvloop_is_the_default_when_installed() -> None:
    pytest.importorskip("uvloop")
    assert loop_name({}) == "uvloop"
    assert loop_name({"VOICECORE_LOOP": "uvloop"}) == "uvloop"


@pytest.mark.parametrize("name", ["asyncio", "uvloop"])
def test_run_uses_the_named_loop(name: str) -> None:
    if name == "uvloop":
        uvloop = pytest.importorskip("uvloop")

    async def kind() -> type:
        return type(asyncio.get_running_loop())

    loop_type = run(kind(), loop=name)  # type: ignore[arg-type]
    if name == "uvloop":
        assert loop_type is uvloop.Loop
    else:
        assert issubclass(loop_type, asyncio.BaseEventLoop)


def test_settle_heap_takes_what_is_alive_out_of_collections() -> None:
    alive = [[] for _ in range(1000)]  # set-up state: lists the collector would walk
    thresholds = gc.get_threshold()
    gc.unfreeze()
    try:
        settle_heap()
        assert gc.get_freeze_count() >= len(alive)
        collected = {id(x) for generation in range(3) for x in gc.get_objects(generation=generation)}
        assert not collected & {id(x) for x in alive}
        assert gc.get_threshold() == (*thresholds[:2], FULL_COLLECTION_EVERY)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


class _Node:
    """A weak-referenceable object that can sit in a reference cycle."""

    peer: object = None


def test_young_cycles_are_still_collected_on_their_own_after_settle_heap() -> None:
    thresholds = gc.get_threshold()
    try:
        settle_heap()
        node = _Node()
        node.peer = node  # a cycle: only the collector can free it
        witness = weakref.ref(node)
        del node
        # allocations enough to trigger collections of the young generation
        churn: list[list[object]] = [[] for _ in range(10 * thresholds[0])]
        del churn
        assert witness() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_every_nth_ended_call_runs_a_full_collection() -> None:
    ended = EndedCalls(every=3)
    gc.disable()  # only EndedCalls collects
    try:
        node = _Node()
        node.peer = node
        witness = weakref.ref(node)
        gc.collect(0)
        gc.collect(1)  # in the oldest generation now, where only a full collection looks
        del node
        assert [ended.ended(), ended.ended()] == [False, False]
        assert witness() is not None
        assert ended.ended() is True
        assert witness() is None
        assert ended.collections == 1
        assert [ended.ended() for _ in range(6)] == [False, False, True, False, False, True]
    finally:
        gc.enable()


def test_ended_calls_needs_a_positive_count() -> None:
    with pytest.raises(ConfigError, match="every >= 1"):
        EndedCalls(every=0)

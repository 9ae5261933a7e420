"""Admission control as a table of (call, now) -> admitted or refused."""

from __future__ import annotations

import json

import pytest

from voicecore.errors import ConfigError
from voicecore.sansio.admission import Admission


def test_calls_beyond_the_limit_are_refused_until_one_ends() -> None:
    admission = Admission(2)
    assert admission.admit("a", 0.0)
    assert admission.admit("b", 0.0)
    assert not admission.admit("c", 0.0)
    assert not admission.reserve("c", 0.0)
    admission.release("a")
    assert admission.admit("c", 1.0)
    assert admission.active == 2


def test_a_reservation_holds_a_slot_for_its_stream_only() -> None:
    admission = Admission(1, reservation_s=5.0)
    assert admission.reserve("a", 0.0)
    assert admission.reserve("a", 1.0)  # a repeated webhook keeps its reservation
    assert not admission.reserve("b", 1.0)
    assert not admission.admit("b", 1.0)
    assert admission.admit("a", 2.0)
    assert not admission.admit("a", 2.0)  # a second stream for the same call


def test_an_unclaimed_reservation_expires() -> None:
    admission = Admission(1, reservation_s=5.0)
    assert admission.reserve("a", 0.0)
    assert admission.load(4.9) == 1
    assert admission.admit("b", 5.0)
    assert not admission.admit("a", 5.0)


def test_draining_refuses_everything_new_and_drops_reservations() -> None:
    admission = Admission(3)
    assert admission.admit("a", 0.0)
    assert admission.reserve("b", 0.0)
    admission.drain()
    assert not admission.admit("b", 0.1)
    assert not admission.reserve("c", 0.1)
    assert admission.load(0.1) == 1
    admission.release("a")
    assert admission.active == 0


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_calls"):
        Admission(0)


def test_the_state_survives_a_round_trip_through_json() -> None:
    admission = Admission(3, reservation_s=5.0)
    assert admission.admit("a", 0.0, owner=11)
    assert admission.reserve("b", 0.0, owner=12)
    restored = Admission.restore(3, json.loads(json.dumps(admission.state())), reservation_s=5.0)
    assert (restored.active, restored.load(1.0), restored.owners()) == (1, 2, {11, 12})
    assert restored.admit("b", 1.0, owner=11)  # the reservation one worker made, claimed by another
    assert not restored.admit("a", 1.0)
    assert restored.load(6.0) == 2  # claimed: it no longer expires


def test_a_gone_owners_calls_and_reservations_are_given_back() -> None:
    admission = Admission(2)
    assert admission.admit("a", 0.0, owner=1)
    assert admission.reserve("b", 0.0, owner=1)
    assert not admission.admit("c", 0.0, owner=2)
    admission.release_owner(1)
    assert admission.owners() == set()
    assert admission.admit("c", 0.0, owner=2)

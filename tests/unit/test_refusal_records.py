"""Unauthenticated refusals are counted, but written down at most once per client address per
interval, each record carrying how many refusals it stands for (services/http_auth.py)."""

from __future__ import annotations

from services.http_auth import OTHER_CLIENTS, UnauthenticatedRefusals


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_from_one_address_leaves_one_record_per_interval_carrying_its_count() -> None:
    clock = Clock()
    refusals = UnauthenticatedRefusals(interval=60, clock=clock)
    # the first refusal is written at once; the next 499 within the minute are held back
    written = [refusals.refused("198.51.100.7") for _ in range(500)]
    assert written[0] == 1 and written[1:] == [None] * 499
    # the first after the minute is written with those held back: nothing counted twice or lost
    clock.now += 60
    assert refusals.refused("198.51.100.7") == 500
    assert refusals.refused("198.51.100.7") is None


def test_each_address_has_its_own_window() -> None:
    clock = Clock()
    refusals = UnauthenticatedRefusals(interval=60, clock=clock)
    assert refusals.refused("198.51.100.7") == 1
    assert refusals.refused("203.0.113.9") == 1
    assert refusals.refused("198.51.100.7") is None


def test_memory_stays_bounded_when_every_request_comes_from_a_new_address() -> None:
    clock = Clock()
    refusals = UnauthenticatedRefusals(interval=60, max_clients=3, clock=clock)
    assert [refusals.refused(f"2001:db8::{n}") for n in range(3)] == [1, 1, 1]
    # a full table: newcomers share one entry, and are still written once per interval
    assert refusals.refused("2001:db8::99") == 1
    assert refusals.refused("2001:db8::100") is None
    clock.now += 60
    # closed windows with nothing held back are forgotten to make room
    assert refusals.refused("2001:db8::101") == 1
    # the shared entry keeps what it held back until its next record
    assert refusals._windows[OTHER_CLIENTS].held_back == 1

"""The one way tests wait for the system (tests/polling.py): the first answer, or a failure that
says what was awaited."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.polling import eventually, eventually_async


def test_the_first_truthy_answer_is_returned() -> None:
    answers = iter([None, [], 0, ["delivered"], ["later"]])
    assert eventually(lambda: next(answers), what="a delivery", interval=0) == ["delivered"]


def test_a_timeout_fails_saying_what_was_awaited_and_the_last_answer() -> None:
    awaited = r"after 0\.05s waiting for the delivery to VT; last answer: \[\]"
    with pytest.raises(AssertionError, match=awaited):
        eventually(list, what="the delivery to VT", timeout=0.05, interval=0.01)


def test_without_a_description_the_failure_names_the_probe() -> None:
    def nothing_delivered() -> None:
        return None

    with pytest.raises(AssertionError, match=r"waiting for nothing_delivered\(\)"):
        eventually(nothing_delivered, timeout=0.02, interval=0.01)
    with pytest.raises(AssertionError, match=r"waiting for .*lambda: None"):
        eventually(lambda: None, timeout=0.02, interval=0.01)


async def test_the_async_helper_returns_the_first_truthy_answer() -> None:
    calls = itertools.count()

    async def third_time() -> int | None:
        return n if (n := next(calls)) >= 2 else None

    assert await eventually_async(third_time, what="the third call", interval=0) == 2


async def test_the_async_helper_cuts_a_hanging_probe_short_and_says_what_was_awaited() -> None:
    async def hangs() -> bool:
        await asyncio.sleep(60)
        return True

    with pytest.raises(AssertionError, match=r"after 0\.05s waiting for consent ready; last answer: None"):
        await eventually_async(hangs, what="consent ready", timeout=0.05)


async def test_a_probes_own_timeout_is_not_mistaken_for_the_wait_running_out() -> None:
    async def times_out() -> bool:
        raise TimeoutError("the probe's own")

    with pytest.raises(TimeoutError, match="the probe's own"):
        await eventually_async(times_out, what="anything", timeout=5)

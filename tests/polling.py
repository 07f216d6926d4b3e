"""Waiting for what the system does in its own time, in every test tier: poll a probe until it
answers, and fail the test, saying what was awaited, when it does not in time.

    delivery = eventually(lambda: stack.delivery_of(VT, signal_id), what="the delivery to Veilig Thuis")
    ids = await eventually_async(accepted_ids, what="the signal accepted", timeout=60)

A probe answers with something truthy (returned to the caller) or with something falsy (None,
False, an empty list: not yet). `what` names what is awaited; without it the failure names the
probe (a function's name, a lambda's source line). Use these rather than a loop of your own.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T | None], *, what: str | None = None, timeout: float = 30.0, interval: float = 0.25
) -> T:
    """Call `probe` every `interval` seconds until it answers; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(_timed_out(probe, what, timeout, last))


async def eventually_async(
    probe: Callable[[], Awaitable[T | None]],
    *,
    what: str | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 - it becomes a failure that says what was awaited
    interval: float = 0.25,
) -> T:
    """Await `probe` every `interval` seconds until it answers; AssertionError after `timeout`,
    which also cuts short a probe that hangs."""
    last: T | None = None
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            while not (last := await probe()):  # noqa: ASYNC110 - polling the system under test
                await asyncio.sleep(interval)
            return last
    except TimeoutError:
        if not deadline.expired():
            raise  # the probe's own
        raise AssertionError(_timed_out(probe, what, timeout, last)) from None


def _timed_out(probe: Callable[[], Any], what: str | None, timeout: float, last: object) -> str:
    return f"timed out after {timeout}s waiting for {what or _described(probe)}; last answer: {last!r}"


def _described(probe: Callable[[], Any]) -> str:
    """A probe that was given no `what`: its name, or a lambda's source (the line holding it)."""
    name = getattr(probe, "__name__", None)
    if name is not None and name != "<lambda>":
        return f"{name}()"
    try:
        return " ".join(inspect.getsource(probe).split())
    except (OSError, TypeError):
        return repr(probe)

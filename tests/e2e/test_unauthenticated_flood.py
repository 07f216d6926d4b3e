"""A flood of anonymous requests costs the audit log a bounded number of records, each carrying
how many refusals it stands for; a caller who is known but not allowed is recorded every time.

Refusals of one client address are written at most once per SC_REFUSAL_RECORD_SECONDS (here 2 s)
and every one is counted in `safetychain_http_unauthenticated_total`.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.kafka import KafkaAccess
from shared.contracts.events import SignalRejected
from shared.plumbing.policy import Role
from tests.conftest import fresh_prefix
from tests.e2e.stack import Stack
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

INTERVAL_SECONDS = 2.0
FLOOD = 40
COUNTED = re.compile(r"^unauthenticated:refusals=(\d+)$")


@pytest.fixture(scope="module")
def stack(kafka_access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = {"SC_REFUSAL_RECORD_SECONDS": str(INTERVAL_SECONDS)}
    with Stack(kafka_access, fresh_prefix(), tmp_path_factory.mktemp("flood"), settings) as running:
        yield running


def unauthenticated_total(stack: Stack) -> float:
    text = httpx.get(f"{stack.url('signals')}/metrics", timeout=30).text
    found = re.search(r'^safetychain_http_unauthenticated_total\{surface="api"\} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def rejections(stack: Stack) -> list[dict[str, Any]]:
    """The intake's dead letters in the audit log, read by a reader of its own (no rate limit shared)."""
    response = httpx.get(
        f"{stack.url('audit')}/v1/audit/records",
        params={"event_type": SignalRejected.event_type},
        headers=stack.bearer("safety-chain", Role.PRIVACY_OFFICER, person=f"reader-{uuid.uuid4().hex[:8]}"),
        timeout=60,
    )
    response.raise_for_status()
    records: list[dict[str, Any]] = response.json()
    return records


def counts(records: list[dict[str, Any]]) -> list[int]:
    return [int(m.group(1)) for r in records for reason in r["reasons"] if (m := COUNTED.match(reason))]


def test_anonymous_requests_leave_one_counted_record_per_address_and_interval(stack: Stack) -> None:
    before = unauthenticated_total(stack)
    # a flood of anonymous submissions, every one refused
    started = time.monotonic()
    answers = [stack.post_signal(domestic_violence_signal(), as_municipality=None) for _ in range(FLOOD)]
    flooded_for = time.monotonic() - started
    assert all(a.status_code == 401 and a.json()["reason"] == "unauthenticated" for a in answers)
    # once the interval has passed, the next refusal is recorded with those held back before it
    time.sleep(INTERVAL_SECONDS)
    assert stack.post_signal(domestic_violence_signal(), as_municipality=None).status_code == 401
    # every refusal is counted, and is in exactly one record's count
    assert unauthenticated_total(stack) - before == FLOOD + 1

    def all_recorded() -> list[int] | None:
        found = counts(rejections(stack))
        return found if sum(found) == FLOOD + 1 else None

    recorded = eventually(all_recorded)
    # one record per address per interval begun: the first, one per interval the flood lasted, the last
    assert len(recorded) <= 2 + math.ceil(flooded_for / INTERVAL_SECONDS)
    assert recorded[0] == 1


def test_an_authenticated_but_forbidden_caller_is_recorded_every_time(stack: Stack) -> None:
    # a partner's token may not submit signals: each refusal is a fact about a known caller
    partner = {"authorization": f"Bearer {stack.token('riec-amsterdam', Role.PUBLISHER)}"}
    for _ in range(3):
        refused = stack.post_signal(domestic_violence_signal(), as_municipality=None, **partner)
        assert refused.status_code == 403 and refused.json()["reason"] == "forbidden"
    eventually(lambda: sum(r["reasons"][0].startswith("forbidden") for r in rejections(stack)) == 3)

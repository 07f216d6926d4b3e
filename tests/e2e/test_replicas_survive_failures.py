"""Two replicas each of signals and consent and an audit leader with a standby, on the real
broker and PostgreSQL: 5,000 signals over both intakes while a replica of signals and one of
consent are killed with SIGKILL (and restarted later), the audit leader is killed, and the
broker itself restarts. Nothing is lost or doubled, nothing denied flows, a subject's signals
keep their order, every HTTP 202 is honoured and the audit log verifies across the failover
(issue 21, ADR 0022)."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from devstack.kafka import KafkaAccess, LocalKafka
from shared.contracts.signal import passes_eleven_test
from shared.plumbing.kafka import topic_partitions
from tests.conftest import fresh_database, fresh_prefix
from tests.e2e.stack import Stack, header
from tests.e2e.test_consent_restart import publish_over_kafka
from tests.e2e.test_signal_flow import ALL_PARTNERS, domestic_violence_signal
from tests.polling import eventually

SIGNALS = 5000
SUBJECTS = 250  # twenty signals each: their order is worth checking
DENIED_EVERY = 4  # radicalisation: no agreement covers it
OVER_HTTP = 1000  # each answered after its commit: on two cores about 20 a second beside the rest
HTTP_CALLERS = 8
VT = "veilig-thuis-amsterdam"
DELIVERED = "nl.safetychain.signal.delivered.v1"


@pytest.fixture(scope="module")
def replicated(
    kafka_access: KafkaAccess, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = Stack(
        kafka_access,
        fresh_prefix(),
        tmp_path_factory.mktemp("replicas"),
        # small batches, so the kills land inside transactions as well as between them
        extra_env={"SC_MAX_BATCH": "20", "SC_AUDIT_LEASE_SECONDS": "3"},
        replicas={"signals": 2, "consent": 2, "audit": 2},
        database_url=fresh_database(postgres_url),
    )
    with stack:
        yield stack


def _bsns() -> Iterator[str]:
    return (f"{n:09d}" for n in range(10**8, 10**9) if passes_eleven_test(f"{n:09d}"))


def _signals() -> tuple[list[dict[str, Any]], set[str]]:
    """The signals, and those no agreement permits."""
    subjects = list(islice(_bsns(), SUBJECTS))
    documents, denied = [], set()
    for number in range(SIGNALS):
        category = "radicalisering" if number % DENIED_EVERY == 0 else "huiselijk_geweld"
        document = domestic_violence_signal(
            signal_id=str(uuid.uuid4()),
            category=category,
            subject={"kind": "person", "bsn": subjects[number % SUBJECTS], "name": f"Persoon {number}"},
            attributes={} if category == "radicalisering" else {"children_present": False},
        )
        documents.append(document)
        if category == "radicalisering":
            denied.add(document["signal_id"])
    return documents, denied


def _committed_offsets(stack: Stack, name: str) -> int:
    """The topic's committed end offsets summed: a cheap measure of progress (markers count)."""

    async def ends() -> int:
        consumer = AIOKafkaConsumer(**stack.kafka_options(), isolation_level="read_committed")
        await consumer.start()
        try:
            partitions = await topic_partitions(consumer, stack.topic(name))
            return sum((await consumer.end_offsets(partitions)).values())
        finally:
            await consumer.stop()

    try:
        return asyncio.run(ends())
    except Exception:  # the broker is restarting: no measure now
        return 0


class HttpCallers:
    """Municipal systems posting over HTTP to either signals replica, as behind a load
    balancer: a refused connection or a 5xx is tried again (same signal id) on the other."""

    def __init__(self, stack: Stack, documents: list[dict[str, Any]]) -> None:
        self._stack = stack
        self._work: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
        for number, document in enumerate(documents):
            self._work.put((number, document))
        self.honoured: dict[str, int] = {}  # signal id -> 202, or 409 naming its own first result
        self.refused: list[str] = []  # any other 4xx: a defect
        self._lock = threading.Lock()

    def _post(self, replica: str, document: dict[str, Any], token: str) -> httpx.Response | None:
        try:
            return httpx.post(
                f"{self._stack.url(replica)}/v1/signals",
                json=document,
                headers={"authorization": f"Bearer {token}"},
                timeout=30,
            )
        except httpx.HTTPError:
            return None

    def run(self) -> None:
        token = self._stack.token("gm0363", lifetime_seconds=3600)
        while True:
            try:
                number, document = self._work.get_nowait()
            except queue.Empty:
                return
            replica = ("signals", "signals-1")[number % 2]
            while True:
                answer = self._post(replica, document, token)
                if answer is not None and answer.status_code in (202, 409):
                    own_first = answer.status_code == 202 or (
                        answer.json().get("first_result", {}).get("signal_id") == document["signal_id"]
                    )
                    with self._lock:
                        if own_first:
                            self.honoured[document["signal_id"]] = answer.status_code
                        else:
                            self.refused.append(answer.text)
                    break
                if answer is not None and 400 <= answer.status_code < 500:
                    with self._lock:
                        self.refused.append(answer.text)
                    break
                replica = "signals-1" if replica == "signals" else "signals"  # 5xx, 503 or no answer
                time.sleep(0.5)


def _publish_until_acknowledged(stack: Stack, documents: list[dict[str, Any]]) -> None:
    """As a municipal system does: what the broker did not acknowledge is published again (the
    signals service accepts a signal id once)."""
    while True:
        try:
            publish_over_kafka(stack, documents)
            return
        except Exception:  # the broker restarting
            time.sleep(1.0)


def _audit_leader(stack: Stack) -> str:
    def leading() -> str | None:
        for name in ("audit", "audit-1"):
            try:
                checks = httpx.get(f"{stack.url(name)}/readyz", timeout=5).json()["checks"]
            except (httpx.HTTPError, ValueError, KeyError):
                continue
            if "intake" in checks:
                return name
        return None

    return eventually(leading, what="an audit leader", timeout=60)


def test_replicas_survive_the_loss_of_any_one_and_a_broker_restart(
    replicated: Stack, local_kafka: LocalKafka | None
) -> None:
    if local_kafka is None:
        pytest.skip("restarts the broker: needs the broker this session started")
    stack = replicated
    documents, denied = _signals()
    over_kafka, over_http = documents[: SIGNALS - OVER_HTTP], documents[SIGNALS - OVER_HTTP :]
    callers = HttpCallers(stack, over_http)

    def accepted_at_least(count: int) -> bool:
        return _committed_offsets(stack, "signals.accepted.v1") >= count

    with ThreadPoolExecutor(1 + HTTP_CALLERS) as background:
        running = [background.submit(_publish_until_acknowledged, stack, over_kafka)]
        running += [background.submit(callers.run) for _ in range(HTTP_CALLERS)]

        # One replica of signals and one of consent die without warning, mid-stream.
        eventually(lambda: accepted_at_least(SIGNALS // 5), timeout=300, interval=0.5)
        stack.services["signals-1"].kill()
        stack.services["consent-1"].kill()
        assert len(stack.read_topic("signals.accepted.v1")) < SIGNALS, "the kill came too late"

        # The audit leader dies; the standby takes the lease and continues the same log.
        eventually(lambda: accepted_at_least(2 * SIGNALS // 5), timeout=300, interval=0.5)
        leader = _audit_leader(stack)
        stack.services[leader].kill()
        assert len(stack.read_topic("signals.accepted.v1")) < SIGNALS, "the failover came too late"

        # The broker itself restarts.
        eventually(lambda: accepted_at_least(SIGNALS // 2), timeout=300, interval=0.5)
        assert len(stack.read_topic("signals.accepted.v1")) < SIGNALS, "the restart came too late"
        local_kafka.stop()
        local_kafka.start()

        # The killed replicas come back while the signals still arrive.
        eventually(lambda: accepted_at_least(3 * SIGNALS // 5), timeout=300, interval=1.0)
        for name in ("signals-1", "consent-1", leader):
            stack.restart(name)
        for work in running:
            work.result(timeout=600)

    # Every caller was answered, none refused, and each answer is kept: accepted exactly once.
    assert callers.refused == []
    assert set(callers.honoured) == {document["signal_id"] for document in over_http}
    every = {document["signal_id"] for document in documents}

    def all_accepted() -> list[Any] | None:
        found = stack.read_topic("signals.accepted.v1")
        return found if len(found) >= SIGNALS else None

    accepted = eventually(all_accepted, what="every signal accepted", timeout=600, interval=2.0)
    assert Counter(header(record, "ce_signalid") for record in accepted) == Counter(dict.fromkeys(every, 1))

    # Each signal decided once for each candidate partner; only the permitted delivered, once.
    permitted = every - denied
    vt_topic = f"partner.{VT}.signals.v1"
    deliveries = eventually(
        lambda: found if len(found := stack.read_topic(vt_topic)) >= len(permitted) else None,
        what="every permitted delivery",
        timeout=600,
        interval=2.0,
    )
    by_delivery = {stack.delivery_id(VT, signal_id): signal_id for signal_id in every}
    delivered = Counter(by_delivery.get(header(record, "ce_deliveryid") or "") for record in deliveries)
    assert delivered == Counter(dict.fromkeys(permitted, 1))
    for partner in ALL_PARTNERS:
        if partner != VT:
            assert stack.read_topic(f"partner.{partner}.signals.v1") == []
    decisions = Counter(
        (header(record, "ce_signalid"), header(record, "ce_recipient"))
        for record in stack.read_topic("exchange.decisions.v1")
    )
    assert set(decisions) == {(signal_id, partner) for signal_id in every for partner in ALL_PARTNERS}
    assert max(decisions.values()) == 1

    # A subject's signals reach the partner in the order they were accepted (one subject, one
    # partition of each topic: offsets order them).
    accepted_order: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for record in accepted:
        signal_id = header(record, "ce_signalid") or ""
        if signal_id in permitted:
            accepted_order[header(record, "ce_subject") or ""].append(
                (record.partition, record.offset, signal_id)
            )
    delivered_at = {
        by_delivery[header(record, "ce_deliveryid") or ""]: (record.partition, record.offset)
        for record in deliveries
    }
    assert len(accepted_order) == SUBJECTS
    for received in accepted_order.values():
        assert len({partition for partition, _, _ in received}) == 1
        in_acceptance = [signal_id for _, _, signal_id in sorted(received)]
        assert len({delivered_at[signal_id][0] for signal_id in in_acceptance}) == 1
        assert sorted(in_acceptance, key=delivered_at.__getitem__) == in_acceptance

    # The audit log holds every delivery once, names the failover, and verifies against every
    # checkpoint published, those of the first leader's epoch included.
    def audited() -> list[dict[str, Any]] | None:
        records = stack.audit_records(event_type=DELIVERED)
        return records if len(records) >= len(permitted) else None

    logged = eventually(audited, what="every delivery in the audit log", timeout=600, interval=3.0)
    expected_ids = {stack.delivery_id(VT, signal_id) for signal_id in permitted}
    assert Counter(record["delivery_id"] for record in logged) == Counter(dict.fromkeys(expected_ids, 1))
    assert stack.audit_records(event_type="nl.safetychain.audit.failover.v1") != []
    verified = stack.verify_audit()
    assert verified.status_code == 200, verified.text

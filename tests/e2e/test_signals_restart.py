"""A kill -9 of the signals service in the middle of a stream of new and known subjects loses,
duplicates and strands nothing.

Signals writes a batch's acceptances and new data keys in one database transaction, then the
batch's records and consumed offsets in one Kafka transaction, and a data key's record only with
the first signal that uses it (ADR 0021). Whatever step the SIGKILL interrupts, every signal must
be accepted exactly once and find its key on subjects.keys.v1, so that consent decides it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

import pytest

from devstack.kafka import KafkaAccess
from shared.contracts.events import ExchangeDecided
from shared.contracts.signal import passes_eleven_test
from tests.conftest import fresh_prefix
from tests.e2e.stack import Stack, header
from tests.e2e.test_consent_restart import committed, publish_over_kafka
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

SIGNALS = 600
PER_SUBJECT = 3  # a subject's first signal brings its key's record; the next two find it
MAX_BATCH = 5
VT = "veilig-thuis-amsterdam"


@pytest.fixture(scope="module")
def restart_stack(kafka_access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Small batches, so the kill lands between transactions and inside one.
    workdir = tmp_path_factory.mktemp("signals-restart")
    with Stack(kafka_access, fresh_prefix(), workdir, extra_env={"SC_MAX_BATCH": str(MAX_BATCH)}) as running:
        yield running


def bsns() -> Iterator[str]:
    return (f"{n:09d}" for n in range(10**8, 10**9) if passes_eleven_test(f"{n:09d}"))


def signals() -> list[dict[str, Any]]:
    """Signals about ever new subjects, each subject's in a row: keys are made all along."""
    subjects = list(islice(bsns(), SIGNALS // PER_SUBJECT))
    return [
        domestic_violence_signal(
            signal_id=str(uuid.uuid4()),
            subject={"kind": "person", "bsn": subjects[i // PER_SUBJECT], "name": f"Persoon {i}"},
        )
        for i in range(SIGNALS)
    ]


def test_killing_signals_mid_stream_loses_duplicates_and_strands_nothing(restart_stack: Stack) -> None:
    stack = restart_stack
    documents = signals()
    signal_ids = {document["signal_id"] for document in documents}

    # A municipality publishes the signals over Kafka; signals starts accepting them.
    with ThreadPoolExecutor(1) as background:
        publishing = background.submit(publish_over_kafka, stack, documents)
        eventually(lambda: committed(stack, "signals.accepted.v1") >= 50, timeout=120, interval=0.1)

        # Signals is killed without warning, mid-stream.
        stack.services["signals"].kill()
        accepted_before_restart = committed(stack, "signals.accepted.v1")
        assert accepted_before_restart < SIGNALS, "the kill came too late to prove anything"
        publishing.result(timeout=300)

    # Signals comes back and takes up the intake where its last transaction committed.
    stack.restart("signals")
    eventually(lambda: committed(stack, "signals.accepted.v1") >= SIGNALS, timeout=300, interval=1.0)

    # Every signal is accepted exactly once (read_committed).
    accepted = stack.read_topic("signals.accepted.v1")
    assert Counter(header(r, "ce_signalid") for r in accepted) == Counter({s: 1 for s in signal_ids})

    # Every accepted signal's key is on the keys topic, written once per subject: again only
    # for a key whose record the kill left unconfirmed (at most a batch's worth).
    subjects = {(header(r, "ce_subject"), "gm0363") for r in accepted}
    keys = [
        (header(r, "ce_subject"), header(r, "ce_municipality")) for r in stack.read_topic("subjects.keys.v1")
    ]
    assert set(keys) == subjects
    assert len(subjects) == SIGNALS // PER_SUBJECT
    assert len(keys) <= len(subjects) + MAX_BATCH

    # So consent decides every one, with its key: each delivered to Veilig Thuis exactly once.
    eventually(lambda: committed(stack, f"partner.{VT}.signals.v1") >= SIGNALS, timeout=300, interval=2.0)
    deliveries = Counter(header(r, "ce_deliveryid") for r in stack.read_topic(f"partner.{VT}.signals.v1"))
    assert deliveries == Counter({stack.delivery_id(VT, signal_id): 1 for signal_id in signal_ids})
    decided = [
        ExchangeDecided.model_validate_json(r.value or b"")
        for r in stack.read_topic("exchange.decisions.v1")
        if header(r, "ce_type") == ExchangeDecided.event_type and header(r, "ce_recipient") == VT
    ]
    assert Counter(str(d.signal_id) for d in decided) == Counter({s: 1 for s in signal_ids})
    assert all(d.decision == "permit" for d in decided)

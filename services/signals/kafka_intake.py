"""Kafka intake: signals.intake.v1 through the pipeline, exactly once (one transaction per batch).

The pipeline says what happened to each record of a batch (checking each, asking the stores once
for all of them); the record writer signs it, and the processor produces it with the consumed
offsets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from sqlalchemy.exc import SQLAlchemyError

from services.signals.intake import SERVICE_ID, Checked, IntakePipeline, IntakeRecord, Outcome
from services.signals.outcomes import OutcomeBoard
from services.signals.validation import Invalid
from shared.contracts.emitted import Emitted
from shared.contracts.envelope import Envelope, new_correlation_id
from shared.contracts.events import Event, RejectionReason, SignalAccepted, SignalRejected
from shared.contracts.topics import SIGNALS_INTAKE
from shared.plumbing.logging import bind_correlation_id
from shared.plumbing.metrics import SIGNALS
from shared.plumbing.record_writer import OutgoingRecord, RecordWriter
from shared.plumbing.settings import CommonSettings
from shared.plumbing.transactional import BatchTransform, DeadLetter, RecordSpans, TransactionalProcessor


class BatchOutcomes:
    """The outcomes of the batch in flight, posted to the board only once its transaction
    committed: an HTTP caller is never told "accepted" about a batch that may still abort."""

    def __init__(self, board: OutcomeBoard) -> None:
        self._board = board
        self._pending: list[tuple[str, Outcome]] = []

    def add(self, provenance: str, outcome: Outcome) -> None:
        self._pending.append((provenance, outcome))

    def committed(self) -> None:
        for provenance, outcome in self._pending:
            self._board.post(provenance, outcome)
            if outcome.accepted is not None:
                SIGNALS.labels("accepted", "").inc()
            elif outcome.rejected is not None:
                SIGNALS.labels("rejected", outcome.rejected.reason.value).inc()
        self._pending.clear()

    def aborted(self) -> None:
        self._pending.clear()  # the batch is read again; its records get new outcomes


def _provenance(record: ConsumerRecord) -> str:
    """Where an intake record was read: what its verdict names (KafkaGateway.submit's answer)."""
    return f"{record.topic}:{record.partition}:{record.offset}"


def _intake_record(record: ConsumerRecord) -> IntakeRecord:
    return IntakeRecord(
        value=record.value or b"",
        headers=list(record.headers),
        provenance=_provenance(record),
        written_at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
    )


def naming_the_intake_record(emitted: list[Emitted[Event]], provenance: str) -> list[Emitted[Event]]:
    """The verdict records (accepted, rejected) say which intake record they decide: the HTTP
    intake waits for that, on whichever replica wrote the record (services/signals/outcomes.py)."""
    return [
        replace(out, extensions={**out.extensions, "intakerecord": provenance})
        if isinstance(out.event, SignalAccepted | SignalRejected)
        else out
        for out in emitted
    ]


def _bind_correlation_id(record: IntakeRecord) -> None:
    with contextlib.suppress(ValueError):  # a bad envelope: the pipeline rejects it with its reason
        bind_correlation_id(Envelope.from_headers(record.headers).correlation_id)


def intake_transform(
    pipeline: IntakePipeline, writer: RecordWriter, outcomes: BatchOutcomes
) -> BatchTransform:
    """The batch through the pipeline (in the processor's worker thread, off the event loop):
    each record checked in its span, the stores asked once for the batch, each record decided
    and written in its span."""

    def transform(records: Sequence[ConsumerRecord], spans: RecordSpans) -> list[list[OutgoingRecord]]:
        intake = [_intake_record(record) for record in records]
        checked: list[Checked | Outcome] = []
        for index, record in enumerate(intake):
            with spans.within(index):
                _bind_correlation_id(record)
                checked.append(pipeline.check(record))
        found = pipeline.look_up([c for c in checked if isinstance(c, Checked)])
        written = []
        for index, (record, result) in enumerate(zip(intake, checked, strict=True)):
            with spans.within(index):
                _bind_correlation_id(record)
                outcome = result if isinstance(result, Outcome) else pipeline.decide(result, found)
                outcomes.add(record.provenance, outcome)
                written.append(writer.records(naming_the_intake_record(outcome.emitted, record.provenance)))
        return written

    return transform


def intake_dead_letter(pipeline: IntakePipeline, writer: RecordWriter) -> DeadLetter:
    """The dead letter of an intake record whose processing kept failing (the processor logged
    the error): its reason code and where it was read, nothing of what it carried."""

    def dead_letter(record: ConsumerRecord, error: BaseException) -> list[OutgoingRecord]:
        invalid = Invalid.because(
            RejectionReason.PROCESSING_FAILED,
            f"{record.topic}[{record.partition}]@{record.offset} could not be processed",
        )
        rejected = pipeline.rejection(invalid, "kafka", new_correlation_id())
        return writer.records(naming_the_intake_record([rejected], _provenance(record)))

    return dead_letter


def intake_processor(
    settings: CommonSettings,
    pipeline: IntakePipeline,
    writer: RecordWriter,
    board: OutcomeBoard,
    instance_id: str,
    max_batch: int,
) -> TransactionalProcessor:
    outcomes = BatchOutcomes(board)

    def aborted() -> None:
        pipeline.discard_pending()
        outcomes.aborted()

    def committed() -> None:
        pipeline.committed()
        outcomes.committed()

    return TransactionalProcessor(
        settings,
        name=SERVICE_ID,
        topics=[SIGNALS_INTAKE.prefixed(settings.topic_prefix)],  # the verdicts are followed apart
        transactional_id=f"{SERVICE_ID}-{instance_id}",
        batch_transform=intake_transform(pipeline, writer, outcomes),
        max_batch=max_batch,
        before_commit=lambda: asyncio.to_thread(pipeline.commit_pending),
        after_abort=aborted,
        after_commit=committed,
        dead_letter=intake_dead_letter(pipeline, writer),
        transient=(SQLAlchemyError,),  # the key store or ledger: no verdict on the record
    )

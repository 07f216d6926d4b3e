"""Kafka intake: signals.intake.v1 through the pipeline, exactly once (one transaction per batch).

The pipeline says what happened to each record; the record writer signs it, and the processor
produces it with the consumed offset."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from sqlalchemy.exc import SQLAlchemyError

from services.signals.intake import SERVICE_ID, IntakePipeline, IntakeRecord, Outcome
from services.signals.outcomes import OutcomeBoard
from services.signals.validation import Invalid
from shared.contracts.envelope import Envelope, new_correlation_id
from shared.contracts.events import RejectionReason
from shared.contracts.topics import Party, consumed_by
from shared.plumbing.logging import bind_correlation_id
from shared.plumbing.metrics import SIGNALS
from shared.plumbing.record_writer import OutgoingRecord, RecordWriter
from shared.plumbing.settings import CommonSettings
from shared.plumbing.transactional import DeadLetter, TransactionalProcessor, Transform


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


def intake_transform(pipeline: IntakePipeline, writer: RecordWriter, outcomes: BatchOutcomes) -> Transform:
    def transform(record: ConsumerRecord) -> list[OutgoingRecord]:
        intake_record = IntakeRecord(
            value=record.value or b"",
            headers=list(record.headers),
            provenance=f"{record.topic}:{record.partition}:{record.offset}",
            written_at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        )
        with contextlib.suppress(ValueError):  # a bad envelope: the pipeline rejects it with its reason
            bind_correlation_id(Envelope.from_headers(intake_record.headers).correlation_id)
        # In the processor's worker thread: the key store and ledger's I/O keeps off the loop.
        outcome = pipeline.process(intake_record)
        outcomes.add(intake_record.provenance, outcome)
        return writer.records(outcome.emitted)

    return transform


def intake_dead_letter(pipeline: IntakePipeline, writer: RecordWriter) -> DeadLetter:
    """The dead letter of an intake record whose processing kept failing (the processor logged
    the error): its reason code and where it was read, nothing of what it carried."""

    def dead_letter(record: ConsumerRecord, error: BaseException) -> list[OutgoingRecord]:
        invalid = Invalid.because(
            RejectionReason.PROCESSING_FAILED,
            f"{record.topic}[{record.partition}]@{record.offset} could not be processed",
        )
        return [writer.record(pipeline.rejection(invalid, "kafka", new_correlation_id()))]

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

    return TransactionalProcessor(
        settings,
        name=SERVICE_ID,
        topics=[spec.prefixed(settings.topic_prefix) for spec in consumed_by(Party.SIGNALS)],
        transactional_id=f"{SERVICE_ID}-{instance_id}",
        transform=intake_transform(pipeline, writer, outcomes),
        max_batch=max_batch,
        before_commit=lambda: asyncio.to_thread(pipeline.commit_pending),
        after_abort=aborted,
        after_commit=outcomes.committed,
        dead_letter=intake_dead_letter(pipeline, writer),
        transient=(SQLAlchemyError,),  # the key store or ledger: no verdict on the record
    )

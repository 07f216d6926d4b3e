"""One sequencer under a lease, hot standbys (ADR 0022): who may append to the audit log, who
takes over when, and that a holder which lost the lease can append nothing more. The in-memory
store here; tests/integration/test_audit_failover.py holds SQLite and PostgreSQL to the same."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import REGISTRY

from services.audit.log.catalogue import Role, row_of
from services.audit.log.facts import fact_from_record
from services.audit.log.leader import failover_of
from services.audit.log.lease import Lease, LeaseLostError, Takeover
from services.audit.log.memory_store import InMemoryAuditStore
from services.audit.log.sequencer import Sequencer
from services.audit.log.store import AuditStore
from shared.contracts.crypto.signing import SignatureError, sign_record, verify_record
from shared.contracts.envelope import Envelope, Headers
from shared.contracts.events import AuditFailover
from tests.polling import eventually_async
from tests.unit.test_audit_checkpoints import Clock, fact
from tests.unit.test_audit_facts import SOURCES, src

LEASE = 10.0
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


class Appending:
    """Duties that append under the epoch they were started with, as the intake does, and
    report the lease lost when the store refuses an append for it."""

    def __init__(self, store: AuditStore, failing_starts: int = 0) -> None:
        self.store = store
        self.started: list[Takeover] = []
        self.running = False
        self.failing_starts = failing_starts
        self._lost = asyncio.Event()

    async def start(self, takeover: Takeover) -> None:
        self.started.append(takeover)
        if self.failing_starts:
            self.failing_starts -= 1
            raise ConnectionError("the broker does not answer")
        self._lost.clear()
        self.running = True

    async def lost(self) -> None:
        await self._lost.wait()

    async def stop(self) -> None:
        self.running = False

    def append(self, offset: int) -> None:
        try:
            self.store.append_batch([fact(offset)], epoch=self.started[-1].lease.epoch)
        except LeaseLostError:
            self._lost.set()
            raise


def replica(
    store: AuditStore, holder: str, clock: Clock, failing_starts: int = 0
) -> tuple[Sequencer, Appending]:
    duties = Appending(store, failing_starts)
    return Sequencer(store, holder, duties, lease_seconds=LEASE, clock=clock), duties


# --- The lease in the store ---------------------------------------------------------------------


def test_the_first_taking_is_epoch_one_and_no_failover_and_a_live_lease_keeps_others_out() -> None:
    store = InMemoryAuditStore()
    first = store.take_lease("audit-0", 1000.0, LEASE)
    assert first == Takeover(Lease("audit-0", 1, 1010.0), None, 0) and not first.is_failover
    assert store.take_lease("audit-1", 1009.9, LEASE) is None  # alive: not before it expires
    store.append_batch([fact(1), fact(2)], epoch=1)
    taken = store.take_lease("audit-1", 1010.0, LEASE)
    assert taken == Takeover(Lease("audit-1", 2, 1020.0), Lease("audit-0", 1, 1010.0), 2)
    assert taken.is_failover and store.lease() == Lease("audit-1", 2, 1020.0)


def test_a_restarted_replica_retakes_its_own_lease_at_once_with_the_next_epoch_and_no_failover() -> None:
    store = InMemoryAuditStore()
    store.take_lease("audit-0", 1000.0, LEASE)
    again = store.take_lease("audit-0", 1001.0, LEASE)  # its former self still "holds" it
    assert again is not None and again.lease.epoch == 2 and not again.is_failover
    with pytest.raises(LeaseLostError):  # ...and its former self is fenced
        store.append_batch([fact(1)], epoch=1)


def test_an_append_under_an_epoch_that_was_taken_over_is_refused_and_keeps_nothing() -> None:
    store = InMemoryAuditStore()
    store.take_lease("audit-0", 1000.0, LEASE)
    store.append_batch([fact(1)], {("signals.accepted.v1", 0): 2}, epoch=1)
    store.take_lease("audit-1", 1010.0, LEASE)
    with pytest.raises(LeaseLostError):
        store.append_batch([fact(2)], {("signals.accepted.v1", 0): 3}, epoch=1)
    assert store.size() == 1 and store.consumed_offsets() == {("signals.accepted.v1", 0): 2}
    assert store.append_batch([fact(2)], epoch=2)[0] is not None  # the new holder continues


def test_a_renewal_keeps_the_lease_and_fails_once_another_took_it() -> None:
    store = InMemoryAuditStore()
    lease = store.take_lease("audit-0", 1000.0, LEASE)
    assert lease is not None
    renewed = store.renew_lease(lease.lease, 1008.0, LEASE)
    assert renewed == Lease("audit-0", 1, 1018.0)
    assert store.take_lease("audit-1", 1010.0, LEASE) is None  # renewed: still alive
    assert store.take_lease("audit-1", 1018.0, LEASE) is not None
    assert store.renew_lease(renewed, 1019.0, LEASE) is None


# --- The sequencer: standby, holder, step-down --------------------------------------------------


async def test_a_standby_takes_over_once_the_lease_expired_and_starts_its_duties_with_the_failover() -> None:
    store, clock = InMemoryAuditStore(), Clock()
    leader, leading = replica(store, "audit-0", clock)
    standby, standing_by = replica(store, "audit-1", clock)
    await leader.start()
    await standby.start()
    assert leading.running and leader.on_duty and not standing_by.started and standby.lease is None
    leading.append(1)
    # the holder stops renewing (paused); a poll before expiry changes nothing, one after takes it
    clock.now += LEASE - 0.1
    await standby.stand_by_once()
    assert standby.lease is None
    clock.now += 0.1
    await standby.stand_by_once()
    (takeover,) = standing_by.started
    assert takeover.is_failover and takeover.lease == Lease("audit-1", 2, clock.now + LEASE)
    assert takeover.previous is not None and takeover.previous.holder == "audit-0"
    assert takeover.continued_from == 1 and standby.on_duty


async def test_a_holder_whose_append_is_refused_stops_its_duties_at_once_and_stands_by() -> None:
    store, clock = InMemoryAuditStore(), Clock()
    leader, leading = replica(store, "audit-0", clock)
    standby, standing_by = replica(store, "audit-1", clock)
    await leader.start()
    clock.now += LEASE
    await standby.start()  # took over from the paused holder
    # the paused holder resumes: its next append is refused, and it steps down
    with pytest.raises(LeaseLostError):
        leading.append(1)
    await leader.hold_once(wait_seconds=1.0)
    assert not leading.running and leader.lease is None and not leader.on_duty
    assert store.size() == 0 and store.lease() == standing_by.started[0].lease  # not let go by the loser
    standing_by.append(1)
    assert store.size() == 1


async def test_a_holder_whose_renewal_finds_the_lease_taken_stops_at_once() -> None:
    store, clock = InMemoryAuditStore(), Clock()
    leader, leading = replica(store, "audit-0", clock)
    standby, _ = replica(store, "audit-1", clock)
    await leader.start()
    clock.now += LEASE
    await standby.start()
    await leader.hold_once(wait_seconds=0.01)  # nothing refused yet: it renews, and finds out
    assert not leading.running and leader.lease is None


class SlowToStart(Appending):
    """Duties whose start takes as long as the test says (a consumer joining its group)."""

    def __init__(self, store: AuditStore) -> None:
        super().__init__(store)
        self.may_start = asyncio.Event()

    async def start(self, takeover: Takeover) -> None:
        await self.may_start.wait()
        await super().start(takeover)


async def test_a_holder_renews_its_lease_while_its_duties_take_longer_than_the_lease_to_start() -> None:
    store, clock = InMemoryAuditStore(), Clock()
    duties = SlowToStart(store)
    holder = Sequencer(store, "audit-0", duties, lease_seconds=0.3, clock=clock)
    starting = asyncio.create_task(holder.start())
    await eventually_async(lambda: asyncio.sleep(0, store.lease()), what="the lease taken")
    clock.now += 1.0  # longer than the lease, and still starting
    await eventually_async(
        lambda: asyncio.sleep(0, (store.lease() or Lease("", 0, 0)).expires_at > clock.now),
        what="a renewal while the duties start",
    )
    assert store.take_lease("audit-1", clock.now, 0.3) is None
    duties.may_start.set()
    await starting
    assert duties.running and holder.on_duty


class FlakyStore(InMemoryAuditStore):
    """Renewals fail while `down`, as a store that does not answer."""

    down = False

    def renew_lease(self, lease: Lease, now: float, seconds: float) -> Lease | None:
        if self.down:
            raise ConnectionError("the store does not answer")
        return super().renew_lease(lease, now, seconds)


async def test_a_holder_rides_out_a_renewal_the_store_missed_but_not_past_the_leases_expiry() -> None:
    store, clock = FlakyStore(), Clock()
    leader, leading = replica(store, "audit-0", clock)
    await leader.start()
    store.down = True
    clock.now += LEASE / 3
    await leader.hold_once(wait_seconds=0.01)
    assert leading.running and leader.lease is not None  # still its own: nobody may take it yet
    clock.now += LEASE
    await leader.hold_once(wait_seconds=0.01)
    assert not leading.running and leader.lease is None  # it can no longer know it is the only writer


async def test_duties_that_fail_to_start_are_started_again_under_the_same_takeover() -> None:
    store, clock = InMemoryAuditStore(), Clock()
    first, _ = replica(store, "audit-0", clock)
    await first.start()
    clock.now += LEASE
    second, duties = replica(store, "audit-1", clock, failing_starts=1)
    await second.start()
    assert not duties.running and second.lease is not None and not second.on_duty
    await second.hold_once(wait_seconds=0.01)  # renewed, and started again
    assert duties.running and second.on_duty
    assert duties.started[0] == duties.started[1] and duties.started[1].is_failover  # the fact still due


async def test_a_stopped_sequencer_lets_the_lease_go_so_a_standby_takes_over_within_a_poll() -> None:
    store, clock = InMemoryAuditStore(), Clock()
    leader, leading = replica(store, "audit-0", clock)
    standby, standing_by = replica(store, "audit-1", clock)
    await leader.start()
    running = asyncio.create_task(leader.run())
    await asyncio.sleep(0)  # let it begin holding
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert not leading.running
    await standby.stand_by_once()  # no time passed
    assert standing_by.running and standing_by.started[0].is_failover


# --- The failover is a fact of the log ----------------------------------------------------------

AUDIT_KEY = Ed25519PrivateKey.generate()


def audit_signed(organisation: str, value: bytes, headers: Headers) -> bool | None:
    try:
        verify_record([AUDIT_KEY.public_key()], value, headers)
    except SignatureError:
        return False
    return organisation == "audit"


def failover_record(writer: str = "audit") -> tuple[bytes, Headers]:
    takeover = Takeover(Lease("audit-1", 7, 2000.0), Lease("audit-0", 6, 1990.0), continued_from=1234)
    event = failover_of(takeover, NOW)
    envelope = Envelope(source=src(writer), type=AuditFailover.event_type, time=NOW)
    value = event.to_bytes()
    return value, sign_record(AUDIT_KEY, value, envelope.to_headers())


def test_a_failover_signed_by_audit_is_logged_with_both_holders_the_epoch_and_the_size_it_went_on_from() -> (
    None
):
    value, headers = failover_record()
    logged = fact_from_record("audit.reads.v1", 0, 5, headers, value, audit_signed, sources=SOURCES)
    assert (logged.source, logged.target, logged.decision) == ("audit", "audit", "failover")
    assert logged.reasons == ("from audit-0", "to audit-1", "epoch 7", "continued from 1234 records")
    # nobody's data: no subject, signal, delivery or agreement
    assert logged.subject_pseudonym is logged.signal_id is logged.delivery_id is logged.agreement_id is None
    row = row_of(AuditFailover.event_type)
    assert row is not None and row.role is Role.SEQUENCER and row.writers.services == {"audit"}


def test_a_failover_written_by_another_service_is_a_forgery() -> None:
    value, headers = failover_record(writer="consent")
    logged = fact_from_record("audit.reads.v1", 0, 5, headers, value, audit_signed, sources=SOURCES)
    assert logged.decision == "forged"


def test_a_failover_names_replicas_by_their_ids_only() -> None:
    with pytest.raises(ValueError):
        AuditFailover(
            previous_holder="Jan de Vries", holder="audit-1", epoch=2, continued_from=0, taken_at=NOW
        )


async def test_the_replica_that_writes_says_its_epoch_on_metrics_and_zero_once_it_stands_by() -> None:
    store, clock = InMemoryAuditStore(), Clock()
    sequencer, _ = replica(store, "audit-0", clock)
    await sequencer.start()
    assert REGISTRY.get_sample_value("safetychain_audit_sequencer_epoch") == 1
    await sequencer.step_down("stopped")
    assert REGISTRY.get_sample_value("safetychain_audit_sequencer_epoch") == 0

"""An erasure reaches every partner a delivery just reached, also while consent's recipients view
lags (real broker, consent's real app and processor in this process; the test plays signals).

Consent remembers who received what on consent.recipients.v1 and reads it back through a view.
A view that has not yet read the record a previous batch wrote must not be taken for the truth:
consent catches it up before every batch (services/consent/state.py `ConsentState.catch_up`).
The view is held back here by pausing its consumer, as a slow fetch would.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.consent.state import CompactedView
from shared.contracts.emitted import Emitted
from shared.contracts.events import ErasureNotice, SignalDelivered, SubjectErased, SubjectRecipients
from shared.contracts.topics import partner_topic
from tests.e2e.stack import header, read_all
from tests.integration.test_consent_waits_for_data_keys import Consent, consent
from tests.polling import eventually_async

pytestmark = pytest.mark.kafka
__all__ = ["consent"]  # the fixture, shared with the data-key tests

VT = "veilig-thuis-amsterdam"  # receives gm0363's domestic-violence signals
RIEC = "riec-amsterdam"  # receives gm0363's undermining signals


@contextlib.asynccontextmanager
async def held_back(view: CompactedView[SubjectRecipients]) -> AsyncIterator[None]:
    """The view reads nothing new until the block ends (it starts at the topic's end)."""
    await view.catch_up()
    consumer, partitions = view._consumer, view._partitions
    assert consumer is not None
    consumer.pause(*partitions)
    try:
        yield
    finally:
        consumer.resume(*partitions)


async def deliver(consent: Consent, bsn: str, partner: str, **overrides: str) -> str:
    """A signal accepted, decided and delivered to `partner`; its subject pseudonym."""
    _, key_record, accepted_record = consent.accept(bsn, **overrides)
    await consent.produce(key_record)
    await consent.produce(accepted_record)
    wanted = consent.settings.topic(partner_topic(partner).name)

    async def delivered() -> bool:
        return any(
            header(r, "ce_type") == SignalDelivered.event_type
            for r in await read_all(consent.admin_options, wanted)
        )

    await eventually_async(delivered, what=f"a delivery on {wanted}", timeout=60, interval=0.5)
    assert accepted_record.key is not None
    return accepted_record.key.decode()


async def erase(consent: Consent, subject: str, municipality: str | None) -> None:
    """What the signals service writes once it destroyed the key(s): the signed erasure."""
    now = datetime.now(UTC)
    event = SubjectErased(
        subject_pseudonym=subject,
        municipality=municipality,
        requested_by=municipality or "safety-chain",
        erased_at=now,
        had_data_key=True,
    )
    await consent.produce(consent.signals.record(Emitted(event, key=subject, subject=subject, time=now)))


async def notices(consent: Consent, partner: str) -> list[ErasureNotice]:
    records = await read_all(consent.admin_options, consent.settings.topic(partner_topic(partner).name))
    return [
        ErasureNotice.model_validate_json(r.value or b"")
        for r in records
        if header(r, "ce_type") == ErasureNotice.event_type
    ]


async def test_an_erasure_right_after_a_delivery_notifies_its_recipient_while_the_view_lags(
    consent: Consent,
) -> None:
    recipients = consent.state.recipients
    async with held_back(recipients):
        # A delivery to Veilig Thuis: consent writes who received it, which the view does not read.
        subject = await deliver(consent, "999990019", VT)
        # The municipality erases right after. Consent waits for its view rather than take the
        # lagging view for "nobody received anything".
        await erase(consent, subject, "gm0363")
        await eventually_async(
            lambda: _true(recipients.waiting > 0),
            what="consent waiting for its view",
            timeout=60,
            interval=0.5,
        )
        assert await notices(consent, VT) == []
    # Once the view reads on, the erasure reaches Veilig Thuis, scoped to gm0363's data.
    await eventually_async(
        lambda: notices(consent, VT), what="an erasure notice to Veilig Thuis", timeout=60, interval=0.5
    )
    (notice,) = await notices(consent, VT)
    assert notice.municipality == "gm0363"


async def test_two_signals_in_separate_batches_keep_each_others_recipients(consent: Consent) -> None:
    recipients = consent.state.recipients
    async with held_back(recipients):
        # One signal about a person reaches Veilig Thuis; its recipients record is not read back.
        subject = await deliver(consent, "123456782", VT)
        # The next signal about the same person (to the RIEC) waits for that record instead of
        # writing the person's recipients from the lagging view.
        signal_id, records = consent.accept_records(
            "123456782",
            category="ondermijning",
            purpose="bestuurlijke_aanpak_ondermijning",
            attributes={"kvk_number": "12345678", "sector": "horeca"},
        )
        for record in records:  # the accepted signal (the person's key came with the first)
            await consent.produce(record)
        await eventually_async(
            lambda: _true(recipients.waiting > 0),
            what="consent waiting for its view",
            timeout=60,
            interval=0.5,
        )
    await consent.decided(signal_id)
    await recipients.catch_up()
    memory = recipients.get(subject)
    assert memory is not None
    assert {(p.municipality, r) for p in memory.provided for r in p.recipients} == {
        ("gm0363", VT),
        ("gm0363", RIEC),
    }


async def _true(value: bool) -> bool:
    return value

"""The intake pipeline as a table: every kind of intake record, and what comes out.

No broker: the pipeline is fed records as the Kafka intake would, with real keys, a real
SQLite key store and ledger.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from services.signals.intake import IntakeRecord
from services.signals.keystore import ALL_MUNICIPALITIES, SubjectErasedError, subject_keys
from shared.contracts.crypto import datakeys
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.sealing import b64decode, personal_payload_context
from shared.contracts.crypto.signing import sign_record, verify_record
from shared.contracts.envelope import Headers
from shared.contracts.events import (
    RejectionReason,
    SignalAccepted,
    SubjectDataKey,
    data_key_id,
)
from tests.unit.intake_harness import Harness, Written, rejected
from tests.unit.test_signal_contract import valid_submission

BSN = "999990019"


def test_a_signed_sealed_signal_is_accepted_as_a_data_key_then_a_signed_accepted_event(
    harness: Harness,
) -> None:
    outcome = harness.process(*harness.record(valid_submission()))
    assert outcome.accepted is not None
    key_record, accepted_record = outcome.records
    assert key_record.topic == "t.subjects.keys.v1" and accepted_record.topic == "t.signals.accepted.v1"
    assert accepted_record.value is not None
    verify_record(
        [harness.registry.ed25519_public("signals")], accepted_record.value, accepted_record.headers
    )
    accepted = SignalAccepted.model_validate_json(accepted_record.value)
    assert accepted.authenticated_by == "signature" and accepted.publisher == "gm0363"
    assert accepted_record.key == accepted.subject_pseudonym.encode()
    # The key is the one of this subject and this municipality (ADR 0009), filed under both.
    assert key_record.key == data_key_id(accepted.subject_pseudonym, "gm0363").encode()
    assert SubjectDataKey.model_validate_json(key_record.value or b"").municipality == "gm0363"
    # The personal payload opens with that data key, and only with it.
    assert harness.keystore.find("gm0518", accepted.subject_pseudonym) is None
    data_key = harness.keystore.data_key("gm0363", accepted.subject_pseudonym)
    personal = json.loads(
        datakeys.decrypt(
            data_key,
            b64decode(accepted.personal.ciphertext),
            personal_payload_context(str(accepted.signal_id), accepted.subject_pseudonym),
        )
    )
    assert personal["subject"]["bsn"] == BSN
    for record in outcome.records:
        assert BSN.encode() not in (record.value or b"") + b"".join(v for _, v in record.headers)


def test_a_record_the_signals_service_signed_on_behalf_of_a_caller_counts_as_api_token(
    harness: Harness,
) -> None:
    outcome = harness.process(*harness.record(valid_submission(), signer="signals"))
    assert outcome.accepted is not None and outcome.accepted.authenticated_by == "api-token"


def _unsigned(value: bytes, headers: Headers) -> tuple[bytes, Headers]:
    return value, [(k, v) for k, v in headers if not k.startswith("ce_signature")]


def _tampered(value: bytes, headers: Headers) -> tuple[bytes, Headers]:
    document = json.loads(value)
    document["ciphertext"] = document["ciphertext"][:-4] + "AAA="
    return json.dumps(document).encode(), headers


def _garbled_signature(value: bytes, headers: Headers) -> tuple[bytes, Headers]:
    return value, [(k, b"!!" if k == "ce_signature" else v) for k, v in headers]


def _unknown_key(harness: Harness, value: bytes, headers: Headers) -> tuple[bytes, Headers]:
    stranger = KeyRing(harness.root / "elsewhere", generate_missing=True)
    return value, sign_record(stranger.ed25519_private("someone"), value, headers)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing-signature", RejectionReason.MISSING_SIGNATURE),
        ("tampered-value", RejectionReason.BAD_SIGNATURE),
        ("garbled-signature", RejectionReason.MALFORMED_SIGNATURE),
        ("unknown-key", RejectionReason.UNKNOWN_KEY),
        ("another-municipalitys-key", RejectionReason.WRONG_PUBLISHER),
    ],
)
def test_a_record_whose_publisher_cannot_be_proven_is_rejected_with_its_reason(
    harness: Harness, case: str, reason: RejectionReason
) -> None:
    value, headers = harness.record(valid_submission())
    if case == "missing-signature":
        value, headers = _unsigned(value, headers)
    elif case == "tampered-value":
        value, headers = _tampered(value, headers)
    elif case == "garbled-signature":
        value, headers = _garbled_signature(value, headers)
    elif case == "unknown-key":
        value, headers = _unknown_key(harness, value, headers)
    else:
        value, headers = harness.record(valid_submission(), publisher="gm0363", signer="gm0518")
    assert rejected(harness.process(value, headers)).reason is reason


def test_a_signal_naming_another_municipality_than_its_signer_is_rejected(harness: Harness) -> None:
    outcome = harness.process(*harness.record(valid_submission(municipality="gm0518"), publisher="gm0363"))
    assert rejected(outcome).reason is RejectionReason.WRONG_PUBLISHER


def test_a_record_from_an_unregistered_source_is_rejected(harness: Harness) -> None:
    outcome = harness.process(*harness.record(valid_submission(), publisher="gm9999"))
    assert rejected(outcome).reason is RejectionReason.UNKNOWN_MUNICIPALITY


@pytest.mark.parametrize(
    "source",
    [
        "gm0363",  # an organisation id: the source before the NL GOV profile
        "urn:nld:oin:00000001002564440000:systeem:elders",  # Amsterdam's OIN, a system it has not
        "urn:nld:oin:00000001002564440000",
        "partner:veilig-thuis-amsterdam",
        "consent",
    ],
)
def test_a_record_whose_source_names_no_registered_municipality_is_rejected(
    harness: Harness, source: str
) -> None:
    """Signed with the municipality's own key, so only the source is wrong: it must be the URN
    the registry gives a municipality (a partner's or a service's is no publisher's either)."""
    value, headers = harness.record(valid_submission())
    headers = [
        (n, source.encode() if n == "ce_source" else v)
        for n, v in headers
        if not n.startswith("ce_signature")
    ]
    outcome = harness.process(value, sign_record(harness.keys.ed25519_private("gm0363"), value, headers))
    refused = rejected(outcome)
    assert refused.reason is RejectionReason.UNKNOWN_MUNICIPALITY
    assert [e.location for e in refused.errors] == ["ce_source"]
    assert refused.municipality is None


@pytest.mark.parametrize("organisation", ["veilig-thuis-amsterdam", "consent", "signals"])
def test_a_record_with_the_source_of_a_partner_or_service_is_no_municipalitys(
    harness: Harness, organisation: str
) -> None:
    value, headers = harness.record(valid_submission())
    source = harness.registry.source(organisation).encode()
    headers = [(n, source if n == "ce_source" else v) for n, v in headers if not n.startswith("ce_signature")]
    outcome = harness.process(value, sign_record(harness.keys.ed25519_private("gm0363"), value, headers))
    assert rejected(outcome).reason is RejectionReason.UNKNOWN_MUNICIPALITY


def test_every_record_the_pipeline_writes_carries_the_signals_services_source(harness: Harness) -> None:
    accepted = harness.process(*harness.record(valid_submission()))
    refused = harness.process(*harness.record(valid_submission(municipality="gm0518")))
    records = [*accepted.records, *refused.records]
    assert len(records) == 3  # the data key, the accepted signal, the dead letter
    expected = harness.registry.source("signals").encode()
    assert expected.startswith(b"urn:nld:oin:") and expected.endswith(b":systeem:signals")
    for record in records:
        assert [v for n, v in record.headers if n == "ce_source"] == [expected]


def test_a_record_written_long_after_its_signed_time_is_a_replay(harness: Harness) -> None:
    value, headers = harness.record(valid_submission())
    later = harness.now + timedelta(hours=1)
    outcome = harness.process_record(IntakeRecord(value, headers, "intake:0:1", written_at=later))
    assert rejected(outcome).reason is RejectionReason.REPLAY


def test_a_record_that_waited_in_the_topic_while_the_service_was_down_is_no_replay(harness: Harness) -> None:
    value, headers = harness.record(valid_submission())
    written = harness.now
    harness.now += timedelta(hours=6)  # the service comes back much later
    outcome = harness.process_record(IntakeRecord(value, headers, "intake:0:1", written_at=written))
    assert outcome.accepted is not None


def test_a_record_without_a_time_is_refused_as_a_possible_replay(harness: Harness) -> None:
    value, headers = harness.record(valid_submission())
    untimed = [(name, raw) for name, raw in headers if name != "ce_time"]
    resigned = sign_record(harness.keys.ed25519_private("gm0363"), value, untimed)
    assert rejected(harness.process(value, resigned)).reason is RejectionReason.REPLAY


def test_an_unsealed_value_is_rejected(harness: Harness) -> None:
    raw = json.dumps(valid_submission()).encode()
    _, headers = harness.record(valid_submission())
    headers = sign_record(harness.keys.ed25519_private("gm0363"), raw, headers)
    assert rejected(harness.process(raw, headers)).reason is RejectionReason.NOT_ENCRYPTED


def test_an_oversized_signal_is_rejected(harness: Harness) -> None:
    outcome = harness.process(
        *harness.record(valid_submission(summary="x" * 3000, attributes={"x": "y" * 6000}))
    )
    assert rejected(outcome).reason is RejectionReason.OVERSIZED


@pytest.mark.parametrize(
    ("signal", "reason"),
    [
        (b"{not json", RejectionReason.MALFORMED_JSON),
        (valid_submission(category="graffiti"), RejectionReason.UNKNOWN_CATEGORY),
        (valid_submission(subject={"kind": "person", "bsn": "123456789"}), RejectionReason.INVALID_BSN),
        (
            valid_submission(category="ondermijning", attributes={"kvk_number": "1234"}),
            RejectionReason.INVALID_KVK,
        ),
        (
            valid_submission(
                category="woonoverlast",
                attributes={"address": {"postcode": "0123XX", "house_number": 1}, "nuisance_type": "geluid"},
            ),
            RejectionReason.INVALID_POSTCODE,
        ),
        (valid_submission(summary="x" * 4001), RejectionReason.SUMMARY_TOO_LONG),
    ],
)
def test_an_invalid_signal_is_rejected_with_its_reason(
    harness: Harness, signal: dict[str, Any] | bytes, reason: RejectionReason
) -> None:
    event = rejected(harness.process(*harness.record(signal)))
    assert reason in {error.reason for error in event.errors}
    assert event.channel == "kafka" and event.municipality == "gm0363"


def test_the_same_signal_id_from_another_record_is_a_duplicate_but_a_redelivery_is_not(
    harness: Harness,
) -> None:
    signal = valid_submission(signal_id="6c3e4c43-9d3f-4cc9-9d0a-6c3f7a1c2b11")
    value, headers = harness.record(signal)
    first = harness.process_record(IntakeRecord(value, headers, "intake:0:1"))
    again = harness.process_record(IntakeRecord(value, headers, "intake:0:1"))  # an aborted batch, re-read
    other = harness.process_record(IntakeRecord(*harness.record(signal), "intake:0:2"))
    assert first.accepted is not None and again.accepted is not None
    duplicate = rejected(other)
    assert duplicate.reason is RejectionReason.DUPLICATE
    assert duplicate.first_accepted_at == first.accepted.accepted_at


def test_a_duplicate_from_another_municipality_over_kafka_learns_nothing_of_the_first(
    harness: Harness,
) -> None:
    signal_id = "7d4e5f60-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
    first = harness.process(*harness.record(valid_submission(signal_id=signal_id)))
    assert first.accepted is not None
    # gm0518 publishes its own signal under gm0363's signal id.
    other = rejected(
        harness.process(
            *harness.record(valid_submission(signal_id=signal_id, municipality="gm0518"), "gm0518")
        )
    )
    assert other.reason is RejectionReason.DUPLICATE
    assert other.first_accepted_at is None
    assert other.municipality == "gm0518"
    # gm0363's own repeat still learns when it was first accepted.
    own = rejected(harness.process(*harness.record(valid_submission(signal_id=signal_id))))
    assert own.first_accepted_at == first.accepted.accepted_at


def test_after_erasure_a_subjects_new_signal_is_refused(
    harness: Harness,
) -> None:
    accepted = harness.process(*harness.record(valid_submission())).accepted
    assert accepted is not None
    assert harness.keystore.destroy("gm0363", accepted.subject_pseudonym)
    assert (
        rejected(harness.process(*harness.record(valid_submission()))).reason
        is RejectionReason.SUBJECT_ERASED
    )
    # gm0363 erased what it provided; gm0518 is the controller of its own signals.
    other = harness.process(*harness.record(valid_submission(municipality="gm0518"), "gm0518")).accepted
    assert other is not None and other.subject_pseudonym == accepted.subject_pseudonym


def test_after_the_platforms_erasure_no_municipalitys_new_signal_is_accepted(harness: Harness) -> None:
    accepted = harness.process(*harness.record(valid_submission())).accepted
    assert accepted is not None
    assert harness.keystore.destroy_subject(accepted.subject_pseudonym) == (("gm0363",), True)
    for municipality in ("gm0363", "gm0518"):
        refused = harness.process(*harness.record(valid_submission(municipality=municipality), municipality))
        assert rejected(refused).reason is RejectionReason.SUBJECT_ERASED


def test_a_signal_without_an_id_gets_one_derived_from_its_record_so_a_redelivery_matches(
    harness: Harness,
) -> None:
    signal = valid_submission()
    signal.pop("signal_id", None)
    value, headers = harness.record(signal)
    first = harness.process_record(IntakeRecord(value, headers, "intake:0:7"))
    again = harness.process_record(IntakeRecord(value, headers, "intake:0:7"))
    assert first.accepted is not None and again.accepted is not None
    assert first.accepted.signal_id == again.accepted.signal_id


# -- per batch: the stores read once, a data key's record written once --------------------------


def topics(written: Written) -> list[str]:
    return [record.topic for record in written.records]


def payload_key(harness: Harness, accepted: SignalAccepted) -> bytes:
    """The data key that opens the accepted signal's payload (the store's)."""
    key = harness.keystore.find(accepted.municipality, accepted.subject_pseudonym)
    assert key is not None
    datakeys.decrypt(
        key,
        b64decode(accepted.personal.ciphertext),
        personal_payload_context(str(accepted.signal_id), accepted.subject_pseudonym),
    )
    return key


def test_an_existing_subjects_second_signal_carries_no_data_key_record(harness: Harness) -> None:
    first = harness.process(*harness.record(valid_submission()))
    second = harness.process(*harness.record(valid_submission()))
    assert first.accepted is not None and second.accepted is not None
    # The key's record travelled (and committed) with the first signal; the second has only itself.
    assert topics(first) == ["t.subjects.keys.v1", "t.signals.accepted.v1"]
    assert topics(second) == ["t.signals.accepted.v1"]
    # Both are encrypted with the one key of the subject and municipality.
    assert payload_key(harness, first.accepted) == payload_key(harness, second.accepted)
    # Another municipality's signal about the subject has a key, and a record, of its own.
    other = harness.process(*harness.record(valid_submission(municipality="gm0518"), "gm0518"))
    assert topics(other) == ["t.subjects.keys.v1", "t.signals.accepted.v1"]


def test_signals_of_a_new_subject_in_one_batch_carry_its_data_key_record_once(harness: Harness) -> None:
    outcomes = harness.pipeline.process_batch([harness.intake(valid_submission()) for _ in range(3)])
    written = [harness.writer.records(outcome.emitted) for outcome in outcomes]
    assert [[r.topic for r in records] for records in written] == [
        ["t.subjects.keys.v1", "t.signals.accepted.v1"],
        ["t.signals.accepted.v1"],
        ["t.signals.accepted.v1"],
    ]
    harness.pipeline.commit_pending()
    keys = {payload_key(harness, outcome.accepted) for outcome in outcomes if outcome.accepted}
    assert len(keys) == 1


def test_a_batch_reads_each_store_once_and_writes_in_one_transaction(harness: Harness) -> None:
    harness.process(*harness.record(valid_submission()))  # a known subject among new ones
    records = [harness.intake(valid_submission())] + [
        harness.intake(valid_submission(subject={"kind": "person", "bsn": bsn, "name": "J. Jansen"}))
        for bsn in ("111222333", "123456782")
    ]
    statements: dict[str, list[str]] = {"keystore": [], "ledger": []}
    for name, engine in (("keystore", harness.keystore.engine), ("ledger", harness.ledger._engine)):
        event.listen(
            engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_a, found=statements[name]: found.append(statement.split()[0]),
        )

    outcomes = harness.pipeline.process_batch(records)
    assert all(outcome.accepted is not None for outcome in outcomes)
    # One SELECT of the key store and one of the ledger for the whole batch.
    assert statements == {"keystore": ["SELECT"], "ledger": ["SELECT"]}

    commits: list[object] = []
    event.listen(harness.ledger._engine, "commit", commits.append)
    harness.pipeline.commit_pending()
    # One transaction: the two new keys, the mark that the first batch's key record committed,
    # the acceptances; then the new keys' subjects are checked once for a racing erasure.
    assert statements["ledger"][1:] == ["INSERT", "UPDATE", "INSERT"] and len(commits) == 1
    assert statements["keystore"][1:] == ["SELECT"]


def test_a_key_of_a_batch_that_aborted_after_its_flush_is_published_again(harness: Harness) -> None:
    record = harness.intake(valid_submission())
    lost = harness.pipeline.process(record)
    # The database transaction committed, the Kafka transaction did not (a crash between them).
    harness.pipeline.commit_pending()
    harness.pipeline.discard_pending()

    again = harness.pipeline.process(record)  # the batch, read again
    assert again.accepted is not None and lost.accepted is not None
    assert [e.event.event_type for e in again.emitted] == [e.event.event_type for e in lost.emitted]
    assert isinstance(again.emitted[0].event, SubjectDataKey)
    assert payload_key(harness, again.accepted) == payload_key(harness, lost.accepted)


def test_after_a_restart_a_key_not_yet_marked_published_is_published_once_more(harness: Harness) -> None:
    first = harness.process(*harness.record(valid_submission()))
    assert topics(first) == ["t.subjects.keys.v1", "t.signals.accepted.v1"]
    # The service stops before a later batch recorded that the key's record committed.
    harness.pipeline = harness.restarted()
    again = harness.process(*harness.record(valid_submission()))
    assert topics(again) == ["t.subjects.keys.v1", "t.signals.accepted.v1"]
    # Its next batch records it; from then on, and after any restart, no key record.
    assert topics(harness.process(*harness.record(valid_submission()))) == ["t.signals.accepted.v1"]
    harness.pipeline = harness.restarted()
    assert topics(harness.process(*harness.record(valid_submission()))) == ["t.signals.accepted.v1"]


def test_the_platforms_erasure_racing_with_a_new_key_aborts_the_batch_and_refuses_the_signal(
    harness: Harness,
) -> None:
    record = harness.intake(valid_submission())
    accepted = harness.pipeline.process(record).accepted
    assert accepted is not None
    # The platform's erasure wrote its subject-wide tombstone while the batch was in flight.
    with harness.keystore.engine.begin() as connection:
        connection.execute(
            subject_keys.insert().values(
                subject=accepted.subject_pseudonym,
                municipality=ALL_MUNICIPALITIES,
                wrapped_key=None,
                created_at=harness.now.isoformat(),
                erased_at=harness.now.isoformat(),
            )
        )
    with pytest.raises(SubjectErasedError):
        harness.pipeline.commit_pending()
    harness.pipeline.discard_pending()  # the Kafka transaction aborts
    # The key made meanwhile is destroyed, and the signal, read again, is refused.
    assert harness.keystore.find("gm0363", accepted.subject_pseudonym) is None
    refused = harness.pipeline.process(record)
    assert refused.rejected is not None and refused.rejected.reason is RejectionReason.SUBJECT_ERASED

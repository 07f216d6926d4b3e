"""The personal payload (shared/contracts/personal.py): the JSON the signals service encrypts
into every accepted signal, and what consent accepts when it opens one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.consent.agreements import load_agreements
from services.consent.enforcement import Enforcer
from shared.contracts.crypto import datakeys
from shared.contracts.crypto.sealing import b64encode, personal_payload_context
from shared.contracts.events import EncryptedPayload, SignalDelivered
from shared.contracts.personal import PersonalPayload
from shared.contracts.signal import SignalSubmission, signal_adapter
from tests.unit.intake_harness import Harness
from tests.unit.test_signal_contract import valid_submission

SUBMISSIONS: dict[str, dict[str, Any]] = {
    "a person with a name that is not ASCII": valid_submission(
        subject={"kind": "person", "bsn": "999990019", "name": "Ç. Çelik", "birth_date": "1980-01-01"}
    ),
    "an address, its postcode written with a space": valid_submission(
        category="woonoverlast",
        purpose="zorg_en_veiligheid_casusoverleg",
        subject={"kind": "address", "postcode": "1012 AB", "house_number": 1, "house_letter": "a"},
        attributes={"address": {"postcode": "1012AB", "house_number": 1}, "nuisance_type": "geluid"},
    ),
    "an organisation, with attributes that are lists": valid_submission(
        category="ondermijning",
        purpose="bestuurlijke_aanpak_ondermijning",
        subject={"kind": "organisation", "kvk_number": "12345678", "trade_name": "Jansen Klussen"},
        attributes={"kvk_number": "12345678", "indicators": ["contant geld", "€ 10.000"]},
    ),
}
A_PERSON = {"kind": "person", "bsn": "999990019", "name": None, "birth_date": None}


def submission(name: str) -> SignalSubmission:
    return signal_adapter.validate_python(SUBMISSIONS[name])


@pytest.mark.parametrize("name", sorted(SUBMISSIONS))
def test_the_payload_is_the_json_the_signals_service_wrote_before_it_had_a_model(name: str) -> None:
    signal = submission(name)
    before = json.dumps(
        {
            "subject": signal.subject.model_dump(mode="json"),
            "summary": signal.summary,
            "attributes": signal.attributes.model_dump(mode="json"),
        }
    ).encode()
    assert PersonalPayload.of(signal).to_bytes() == before


@pytest.mark.parametrize("name", sorted(SUBMISSIONS))
def test_what_the_signals_service_writes_reads_back_as_it_was_written(name: str) -> None:
    written = PersonalPayload.of(submission(name))
    read = PersonalPayload.from_bytes(written.to_bytes())
    assert read == written and read.to_bytes() == written.to_bytes()


@pytest.mark.parametrize(
    "document",
    [
        {"subject": A_PERSON, "attributes": {}},
        {"subject": A_PERSON, "summary": "Melding.", "attributes": {}, "note": "x"},
        {"subject": {"kind": "vehicle", "plate": "12-ABC-3"}, "summary": "Melding.", "attributes": {}},
        {"subject": {**A_PERSON, "bsn": "123456789"}, "summary": "Melding.", "attributes": {}},
        {"subject": A_PERSON, "summary": "Melding.", "attributes": ["children_present"]},
        "Melding.",
    ],
    ids=[
        "no summary",
        "an unknown field",
        "an unknown kind of subject",
        "a BSN failing the eleven-test",
        "attributes that are no object",
        "no object at all",
    ],
)
def test_a_payload_of_another_shape_is_refused(document: object) -> None:
    with pytest.raises(ValidationError):
        PersonalPayload.from_bytes(json.dumps(document).encode())


def test_a_payload_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValidationError):
        PersonalPayload.from_bytes(b'{"subject": ')


def test_consent_refuses_to_deliver_from_a_payload_that_is_no_personal_payload(
    harness: Harness,
    project_config_dir: Path,
) -> None:
    # A signal accepted as the signals service accepts it: consent delivers it.
    written = harness.process(*harness.record(valid_submission()))
    accepted = written.accepted
    assert accepted is not None
    data_key = harness.keystore.data_key(accepted.municipality, accepted.subject_pseudonym)
    enforcer = Enforcer(harness.registry, harness.keys.secret("partner-pseudonyms"))
    agreements = load_agreements(project_config_dir / "agreements")
    delivered = enforcer.enforce(accepted, "a" * 32, data_key, agreements)
    assert any(isinstance(emitted.event, SignalDelivered) for emitted in delivered)
    # The same signal, its payload replaced by one without a summary under the same data key:
    # consent raises, so the record is dead-lettered as any whose processing fails.
    context = personal_payload_context(str(accepted.signal_id), accepted.subject_pseudonym)
    unshaped = json.dumps({"subject": A_PERSON, "attributes": {}}).encode()
    ciphertext = b64encode(datakeys.encrypt(data_key, unshaped, context))
    tampered = accepted.model_copy(
        update={"personal": EncryptedPayload(subject=accepted.subject_pseudonym, ciphertext=ciphertext)}
    )
    with pytest.raises(ValidationError):
        enforcer.enforce(tampered, "a" * 32, data_key, agreements)

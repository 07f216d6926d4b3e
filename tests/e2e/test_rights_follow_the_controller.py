"""Each municipality is the controller of what it provided (ADR 0009), on the running system.

One junk signal with a person's BSN makes a municipality a "signaller" of that person. That gives
it rights over its own junk, and nothing more: its erasure shreds what it provided and notifies
only the partners that received that; its withdrawal lifts only its own objection. And consent's
state views keep the newer record: a genuine earlier record, copied back onto its topic by
whoever holds the writer's Kafka credential, resumes no agreement, lifts no objection and
undoes no erasure.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from services.consent.enforcement import ERASED
from services.signals.keystore import SqlKeyStore
from shared.contracts.agreements import AgreementPublished, SubjectDirectives
from shared.contracts.crypto import datakeys
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.crypto.sealing import b64decode, personal_payload_context
from shared.contracts.events import ErasureNotice, ExchangeDecided, SignalAccepted, data_key_id
from shared.plumbing.policy import Role
from tests.e2e.stack import Stack, header
from tests.e2e.test_consent_rules import consent_api, decision_for, delivered_to, undermining_signal
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.e2e.test_verified_state import inject
from tests.polling import eventually

AMSTERDAM, AMSTELVEEN = "gm0363", "gm0518"  # both provide the undermining agreement
VT, RIEC = "veilig-thuis-amsterdam", "riec-amsterdam"
RIGHTS = (Role.SUBJECT_RIGHTS,)
UNDERMINING = "ondermijning-amsterdam"


def submitted(stack: Stack, document: dict[str, Any], municipality: str = AMSTERDAM) -> dict[str, Any]:
    response = stack.post_signal({**document, "municipality": municipality}, as_municipality=municipality)
    assert response.status_code == 202 and response.json()["status"] == "accepted", response.text
    body: dict[str, Any] = response.json()
    return body


def accepted_record(stack: Stack, signal_id: str) -> Any:
    return eventually(
        lambda: next(
            (r for r in stack.read_topic("signals.accepted.v1") if header(r, "ce_signalid") == signal_id),
            None,
        )
    )


def readable(stack: Stack, signal_id: str) -> bool:
    """Does the accepted payload still open with what the key store holds for its provider?"""
    accepted = SignalAccepted.model_validate_json(accepted_record(stack, signal_id).value)
    kek = KeyRing(stack.keys_dir, generate_missing=False).secret("key-encryption-key")
    store = SqlKeyStore(f"sqlite:///{stack.workdir / 'signals.db'}", kek)
    try:
        data_key = store.find(accepted.municipality, accepted.subject_pseudonym)
    finally:
        store.engine.dispose()
    if data_key is None:
        return False
    context = personal_payload_context(signal_id, accepted.subject_pseudonym)
    opened = json.loads(datakeys.decrypt(data_key, b64decode(accepted.personal.ciphertext), context))
    return isinstance(opened["subject"]["bsn"], str)


def erase(stack: Stack, pseudonym: str, as_org: str, *roles: Role) -> httpx.Response:
    return httpx.post(
        f"{stack.url('signals')}/v1/subjects/{pseudonym}/erasure",
        headers=stack.bearer(as_org, *(roles or RIGHTS)),
        timeout=30,
    )


def notices(stack: Stack, partner: str, partner_pseudonym: str) -> list[ErasureNotice]:
    found = [
        ErasureNotice.model_validate_json(r.value or b"")
        for r in stack.read_topic(f"partner.{partner}.signals.v1")
        if header(r, "ce_type") == ErasureNotice.event_type
    ]
    return [n for n in found if n.partner_pseudonym == partner_pseudonym]


def directive(stack: Stack, pseudonym: str, kind: str, as_org: str = AMSTERDAM) -> httpx.Response:
    return consent_api(
        stack,
        "POST",
        f"/v1/subjects/{pseudonym}/directives",
        {"kind": kind, "scope": {"category": "ondermijning"}},
        as_org=as_org,
        roles=RIGHTS,
    )


def test_a_second_municipalitys_erasure_after_one_junk_signal_shreds_only_what_it_provided(
    stack: Stack,
) -> None:
    bsn = "111222333"
    # Amsterdam signals a person twice: Veilig Thuis and the RIEC receive its data.
    violence = submitted(stack, domestic_violence_signal(subject={"kind": "person", "bsn": bsn}))
    undermining = submitted(stack, undermining_signal(bsn))
    pseudonym = violence["subject_pseudonym"]
    vt_delivery = eventually(lambda: stack.delivery_of(VT, violence["signal_id"]))
    eventually(lambda: stack.delivery_of(RIEC, undermining["signal_id"]))
    # Amstelveen sends one junk signal with the same BSN (the RIEC receives it too).
    junk = submitted(stack, undermining_signal(bsn), AMSTELVEEN)
    riec_delivery = eventually(lambda: stack.delivery_of(RIEC, junk["signal_id"]))

    # Amstelveen, now a "signaller" of the person, erases it.
    erased = erase(stack, pseudonym, AMSTELVEEN)
    assert erased.status_code == 202, erased.text
    assert erased.json()["municipality"] == AMSTELVEEN

    # Only what Amstelveen provided is shredded; Amsterdam's payloads still open.
    assert not readable(stack, junk["signal_id"])
    assert readable(stack, violence["signal_id"]) and readable(stack, undermining["signal_id"])
    latest = {r.key: r.value for r in stack.read_topic("subjects.keys.v1")}
    assert latest[data_key_id(pseudonym, AMSTELVEEN).encode()] is None
    assert latest[data_key_id(pseudonym, AMSTERDAM).encode()] is not None

    # The RIEC, which received Amstelveen's data, is told to erase Amstelveen's data only.
    (notice,) = eventually(lambda: notices(stack, RIEC, riec_delivery.partner_pseudonym))
    assert notice.municipality == AMSTELVEEN

    # Amsterdam's next signal about the person is still decided with its key and delivered;
    # Amstelveen's own next one is refused: its erasure stays.
    later = submitted(stack, domestic_violence_signal(subject={"kind": "person", "bsn": bsn}))
    assert decision_for(stack, later["signal_id"], VT)["decision"] == "permit"
    assert eventually(lambda: stack.delivery_of(VT, later["signal_id"]))
    refused = stack.post_signal(
        {**undermining_signal(bsn), "municipality": AMSTELVEEN}, as_municipality=AMSTELVEEN
    )
    assert refused.status_code == 409 and refused.json()["reason"] == "subject_erased"

    # Amsterdam's own erasure still shreds everything it provided, and reaches Veilig Thuis
    # (which Amstelveen's erasure never notified) and the RIEC, for Amsterdam's data.
    assert erase(stack, pseudonym, AMSTERDAM).status_code == 202
    for signal in (violence, undermining, later):
        assert not readable(stack, signal["signal_id"])
    (to_vt,) = eventually(lambda: notices(stack, VT, vt_delivery.partner_pseudonym))
    assert to_vt.municipality == AMSTERDAM
    to_riec = eventually(
        lambda: n if len(n := notices(stack, RIEC, riec_delivery.partner_pseudonym)) == 2 else None
    )
    assert [n.municipality for n in to_riec] == [AMSTELVEEN, AMSTERDAM]


def test_the_platforms_erasure_shreds_what_every_municipality_provided(stack: Stack) -> None:
    bsn = "999990044"
    violence = submitted(stack, domestic_violence_signal(subject={"kind": "person", "bsn": bsn}))
    other = submitted(stack, undermining_signal(bsn), AMSTELVEEN)
    pseudonym = violence["subject_pseudonym"]
    vt_delivery = eventually(lambda: stack.delivery_of(VT, violence["signal_id"]))
    riec_delivery = eventually(lambda: stack.delivery_of(RIEC, other["signal_id"]))

    # The platform's privacy officer acts for every municipality.
    erased = erase(stack, pseudonym, "safety-chain", Role.PRIVACY_OFFICER)
    assert erased.status_code == 202, erased.text
    assert erased.json()["municipality"] is None

    # Both municipalities' data is shredded, both partners are told to erase everything, and no
    # municipality's new signal about the person is accepted.
    assert not readable(stack, violence["signal_id"]) and not readable(stack, other["signal_id"])
    (to_vt,) = eventually(lambda: notices(stack, VT, vt_delivery.partner_pseudonym))
    (to_riec,) = eventually(lambda: notices(stack, RIEC, riec_delivery.partner_pseudonym))
    assert to_vt.municipality is None and to_riec.municipality is None
    for municipality in (AMSTERDAM, AMSTELVEEN):
        refused = stack.post_signal(
            {**undermining_signal(bsn), "municipality": municipality}, as_municipality=municipality
        )
        assert refused.status_code == 409 and refused.json()["reason"] == "subject_erased"


def test_a_second_municipalitys_withdrawal_does_not_lift_the_firsts_objection(stack: Stack) -> None:
    bsn = "123456782"
    first = submitted(stack, undermining_signal(bsn))
    pseudonym = first["subject_pseudonym"]
    decision_for(stack, first["signal_id"], RIEC)  # consent knows Amsterdam signalled the person
    # The person objects; Amsterdam records it.
    assert directive(stack, pseudonym, "objection").status_code == 201
    # Amstelveen sends one junk signal with the BSN, then "withdraws" the objection.
    junk = submitted(stack, undermining_signal(bsn), AMSTELVEEN)
    decision_for(stack, junk["signal_id"], RIEC)
    withdrawn = directive(stack, pseudonym, "objection_withdrawn", as_org=AMSTELVEEN)
    assert withdrawn.status_code == 201, withdrawn.text

    # Amsterdam's next signal about the person stays blocked by Amsterdam's objection.
    blocked = submitted(stack, undermining_signal(bsn))
    decision = decision_for(stack, blocked["signal_id"], RIEC)
    assert decision["decision"] == "deny" and any("objected" in r for r in decision["reasons"])
    assert not delivered_to(stack, blocked["signal_id"], RIEC)
    # Amstelveen's withdrawal governs Amstelveen's own data only.
    own = submitted(stack, undermining_signal(bsn), AMSTELVEEN)
    assert decision_for(stack, own["signal_id"], RIEC)["decision"] == "permit"
    # Amstelveen reads its own directives, never Amsterdam's.
    read = consent_api(stack, "GET", f"/v1/subjects/{pseudonym}/directives", as_org=AMSTELVEEN, roles=RIGHTS)
    assert [(d["kind"], d["municipality"]) for d in read.json()] == [("objection_withdrawn", AMSTELVEEN)]
    # Nor does it learn Amsterdam's directives by asking consent to explain Amsterdam's signal.
    question = {"category": "ondermijning", "purpose": "bestuurlijke_aanpak_ondermijning"}
    for municipality, status in ((AMSTERDAM, 403), (AMSTELVEEN, 200)):
        body = {**question, "municipality": municipality, "subject_pseudonym": pseudonym}
        asked = consent_api(stack, "POST", "/v1/decisions/explain", body, as_org=AMSTELVEEN, roles=RIGHTS)
        assert asked.status_code == status, asked.text


def test_a_replayed_older_directive_set_cannot_lift_a_later_objection(stack: Stack) -> None:
    first = submitted(stack, undermining_signal("999990019"))
    pseudonym = first["subject_pseudonym"]
    decision_for(stack, first["signal_id"], RIEC)  # consent knows Amsterdam signalled the person
    assert directive(stack, pseudonym, "consent_given").status_code == 201
    assert directive(stack, pseudonym, "objection").status_code == 201
    (earlier,) = [
        r
        for r in stack.read_topic("consent.directives.v1")
        if r.key == pseudonym.encode() and SubjectDirectives.model_validate_json(r.value).sequence == 1
    ]

    # An attacker with consent's Kafka credential copies the genuine earlier set back.
    inject(stack, "consent.directives.v1", pseudonym, earlier.value, list(earlier.headers), "consent")

    # The objection holds for the next signal, and in what consent shows.
    blocked = submitted(stack, undermining_signal("999990019"))
    decision = decision_for(stack, blocked["signal_id"], RIEC)
    assert decision["decision"] == "deny" and any("objected" in r for r in decision["reasons"])
    shown = consent_api(stack, "GET", f"/v1/subjects/{pseudonym}/directives", roles=RIGHTS).json()
    assert [d["kind"] for d in shown] == ["consent_given", "objection"]


def test_a_replayed_data_key_cannot_undo_an_erasure(stack: Stack) -> None:
    signal = submitted(stack, domestic_violence_signal(subject={"kind": "person", "bsn": "999990020"}))
    pseudonym = signal["subject_pseudonym"]
    eventually(lambda: stack.delivery_of(VT, signal["signal_id"]))
    key_id = data_key_id(pseudonym, AMSTERDAM).encode()
    (key_record,) = [r for r in stack.read_topic("subjects.keys.v1") if r.key == key_id and r.value]
    genuine_signal = accepted_record(stack, signal["signal_id"])
    assert erase(stack, pseudonym, AMSTERDAM).status_code == 202
    eventually(
        lambda: [r for r in stack.read_topic("subjects.keys.v1") if r.key == key_id and r.value is None]
    )

    # An attacker with signals' Kafka credential copies the genuine key back, then the genuine
    # accepted signal, hoping consent decrypts and delivers the erased data once more.
    inject(stack, "subjects.keys.v1", key_id.decode(), key_record.value, list(key_record.headers), "signals")
    inject(
        stack,
        "signals.accepted.v1",
        pseudonym,
        genuine_signal.value,
        list(genuine_signal.headers),
        "signals",
    )

    # Consent keeps the tombstone: the replayed signal is denied as erased, nothing is delivered.
    def decided_again() -> list[ExchangeDecided]:
        decided = [
            ExchangeDecided.model_validate_json(r.value)
            for r in stack.read_topic("exchange.decisions.v1")
            if header(r, "ce_signalid") == signal["signal_id"] and header(r, "ce_recipient") == VT
        ]
        return decided if len(decided) == 2 else []

    first, again = eventually(decided_again)
    assert first.decision == "permit"
    assert again.decision == "deny" and ERASED in again.reasons
    deliveries = [
        d for d in stack.deliveries(VT) if d.delivery_id == stack.delivery_id(VT, signal["signal_id"])
    ]
    assert len(deliveries) == 1


def test_a_replayed_older_agreement_version_cannot_resume_a_suspended_agreement(stack: Stack) -> None:
    # (Last in this module: it suspends the undermining agreement.)
    current = consent_api(stack, "GET", f"/v1/agreements/{UNDERMINING}").json()
    (active,) = [
        r
        for r in stack.read_topic("consent.agreements.v1")
        if r.key == UNDERMINING.encode()
        and AgreementPublished.model_validate_json(r.value).agreement.version == current["version"]
    ]
    suspended = consent_api(stack, "POST", f"/v1/agreements/{UNDERMINING}/suspend")
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"

    # An attacker with consent's Kafka credential copies the genuine active version back.
    inject(stack, "consent.agreements.v1", UNDERMINING, active.value, list(active.headers), "consent")

    # The agreement stays suspended: the next signal is denied, and consent shows the suspension.
    after = submitted(stack, undermining_signal("999990032"))
    decision = decision_for(stack, after["signal_id"], RIEC)
    assert decision["decision"] == "deny" and any("suspended" in r for r in decision["reasons"])
    shown = consent_api(stack, "GET", f"/v1/agreements/{UNDERMINING}").json()
    assert shown["status"] == "suspended" and shown["version"] == suspended.json()["version"]

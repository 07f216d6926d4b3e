"""Every action authorised, on the running services: the matrix of endpoints x callers, the
token checks, and the attacks the issue names, one test each."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devstack.keys import development_issuer
from shared.contracts.agreements import Agreement
from shared.plumbing.credentials import DevelopmentIssuer
from shared.plumbing.policy import Role
from tests.e2e.agreements import sign_proposal
from tests.e2e.stack import Stack
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

DV = "huiselijk-geweld-amsterdam"
VT = "veilig-thuis-amsterdam"


@dataclass(frozen=True)
class Caller:
    name: str
    organisation: str | None = None  # None: no credential at all
    roles: tuple[Role, ...] = ()
    person: str | None = None

    def headers(self, stack: Stack) -> dict[str, str]:
        if self.organisation is None:
            return {}
        return stack.bearer(self.organisation, *self.roles, person=self.person)


ANONYMOUS = Caller("anonymous")
AMS_PUBLISHER = Caller("gm0363 publisher", "gm0363", (Role.PUBLISHER,))
AMS_RIGHTS = Caller("gm0363 subject-rights", "gm0363", (Role.SUBJECT_RIGHTS,))
AMS_ADMIN = Caller("gm0363 agreement-administrator", "gm0363", (Role.AGREEMENT_ADMINISTRATOR,), "a.admin")
AMS_OFFICER = Caller("gm0363 privacy-officer", "gm0363", (Role.PRIVACY_OFFICER,), "f.fg")
RDAM_PUBLISHER = Caller("gm0599 publisher", "gm0599", (Role.PUBLISHER,))
RDAM_RIGHTS = Caller("gm0599 subject-rights", "gm0599", (Role.SUBJECT_RIGHTS,))
RDAM_ADMIN = Caller("gm0599 agreement-administrator", "gm0599", (Role.AGREEMENT_ADMINISTRATOR,))
RDAM_OFFICER = Caller("gm0599 privacy-officer", "gm0599", (Role.PRIVACY_OFFICER,))
VT_RECIPIENT = Caller("veilig-thuis recipient", VT, (Role.RECIPIENT,))
VT_OFFICER = Caller("veilig-thuis privacy-officer", VT, (Role.PRIVACY_OFFICER,))
VT_EVERY_ROLE = Caller("veilig-thuis with every role", VT, tuple(Role))
PLATFORM = Caller("platform privacy-officer", "safety-chain", (Role.PRIVACY_OFFICER,))

CALLERS = (
    ANONYMOUS,
    AMS_PUBLISHER,
    AMS_RIGHTS,
    AMS_ADMIN,
    AMS_OFFICER,
    RDAM_PUBLISHER,
    RDAM_RIGHTS,
    RDAM_ADMIN,
    RDAM_OFFICER,
    VT_RECIPIENT,
    VT_OFFICER,
    VT_EVERY_ROLE,
    PLATFORM,
)


@dataclass(frozen=True)
class Endpoint:
    name: str
    service: str
    method: str
    path: Callable[[dict[str, str]], str]
    allowed: dict[Caller, int]  # everyone else authenticated: 403; anonymous: 401
    body: Callable[[Stack, dict[str, str]], Any] | None = None
    content: bytes | None = None


def current_version(stack: Stack, agreement_id: str) -> int:
    response = httpx.get(
        f"{stack.url('consent')}/v1/agreements/{agreement_id}", headers=PLATFORM.headers(stack), timeout=30
    )
    response.raise_for_status()
    version: int = response.json()["version"]
    return version


def stale_version_of_dv(stack: Stack, _: dict[str, str]) -> dict[str, Any]:
    """The current version again: an allowed caller gets 409, so the matrix changes nothing."""
    response = httpx.get(
        f"{stack.url('consent')}/v1/agreements/{DV}", headers=PLATFORM.headers(stack), timeout=30
    )
    body: dict[str, Any] = response.json()
    return body


def explain_for_subject(_: Stack, ids: dict[str, str]) -> dict[str, Any]:
    return {
        "municipality": "gm0363",
        "category": "huiselijk_geweld",
        "purpose": "veiligheid_huiselijk_geweld",
        "subject_pseudonym": ids["subject"],
    }


EVERY_AMSTERDAM_ROLE = {AMS_PUBLISHER: 200, AMS_RIGHTS: 200, AMS_ADMIN: 200, AMS_OFFICER: 200}
SUBJECT_RIGHTS = {AMS_RIGHTS: 0, AMS_OFFICER: 0, PLATFORM: 0}
OFFICERS = {AMS_OFFICER: 200, RDAM_OFFICER: 200, VT_OFFICER: 200, VT_EVERY_ROLE: 200, PLATFORM: 200}

ENDPOINTS = (
    Endpoint(
        "submit a signal",
        "signals",
        "POST",
        lambda ids: "/v1/signals",
        {AMS_PUBLISHER: 202},
        body=lambda stack, ids: domestic_violence_signal(),
    ),
    Endpoint(
        "list agreements",
        "consent",
        "GET",
        lambda ids: "/v1/agreements",
        {c: 200 for c in CALLERS if c is not ANONYMOUS},
    ),
    Endpoint(
        "read an agreement",
        "consent",
        "GET",
        lambda ids: f"/v1/agreements/{DV}",
        {**EVERY_AMSTERDAM_ROLE, VT_RECIPIENT: 200, VT_OFFICER: 200, VT_EVERY_ROLE: 200, PLATFORM: 200},
    ),
    Endpoint(
        "publish a new version",
        "consent",
        "POST",
        lambda ids: "/v1/agreements",
        {AMS_ADMIN: 409},
        body=stale_version_of_dv,
    ),
    Endpoint(
        "validate an agreement file",
        "consent",
        "POST",
        lambda ids: "/v1/agreements/validate",
        {c: 422 for c in CALLERS if c is not ANONYMOUS},
        content=b"id: x\n",
    ),
    Endpoint(
        "record a directive",
        "consent",
        "POST",
        lambda ids: f"/v1/subjects/{ids['subject']}/directives",
        {c: 201 for c in SUBJECT_RIGHTS},
        body=lambda stack, ids: {"kind": "consent_given", "scope": {"category": "zorgmijding"}},
    ),
    Endpoint(
        "read directives",
        "consent",
        "GET",
        lambda ids: f"/v1/subjects/{ids['subject']}/directives",
        {c: 200 for c in SUBJECT_RIGHTS},
    ),
    Endpoint(
        "explain with a subject",
        "consent",
        "POST",
        lambda ids: "/v1/decisions/explain",
        {c: 200 for c in SUBJECT_RIGHTS},
        body=explain_for_subject,
    ),
    Endpoint(
        "explain without a subject",
        "consent",
        "POST",
        lambda ids: "/v1/decisions/explain",
        {**EVERY_AMSTERDAM_ROLE, PLATFORM: 200},
        body=lambda stack, ids: {**explain_for_subject(stack, ids), "subject_pseudonym": None},
    ),
    Endpoint("read audit records", "audit", "GET", lambda ids: "/v1/audit/records", OFFICERS),
    Endpoint("verify the audit log", "audit", "GET", lambda ids: "/v1/audit/verify", OFFICERS),
    Endpoint(
        "read the log's checkpoint",
        "audit",
        "GET",
        lambda ids: "/v1/audit/checkpoint",
        {c: 200 for c in CALLERS if c is not ANONYMOUS},
    ),
    Endpoint(
        "read a consistency proof",
        "audit",
        "GET",
        lambda ids: "/v1/audit/consistency?first=1&second=2",
        {c: 200 for c in CALLERS if c is not ANONYMOUS},
    ),
    # Last: it erases the matrix's own subject (three times; erasure is idempotent).
    Endpoint(
        "erase a subject",
        "signals",
        "POST",
        lambda ids: f"/v1/subjects/{ids['erasable']}/erasure",
        {c: 202 for c in SUBJECT_RIGHTS},
    ),
)


def accepted_and_decided(stack: Stack, bsn: str) -> str:
    """A gm0363 signal about a person, accepted and decided by consent: its subject pseudonym."""
    response = stack.post_signal(
        domestic_violence_signal(subject={"kind": "person", "bsn": bsn, "name": "X"})
    )
    assert response.status_code == 202, response.text
    signal_id = response.json()["signal_id"]
    eventually(
        lambda: [
            r for r in stack.audit_records(signal_id=signal_id) if r["event_type"].endswith("decided.v1")
        ]
    )
    pseudonym: str = response.json()["subject_pseudonym"]
    return pseudonym


def call(stack: Stack, endpoint: Endpoint, caller: Caller, ids: dict[str, str]) -> httpx.Response:
    headers = caller.headers(stack)
    options: dict[str, Any] = {}
    if endpoint.body is not None:
        options["json"] = endpoint.body(stack, ids)
    if endpoint.content is not None:
        options["content"] = endpoint.content
        headers["content-type"] = "application/yaml"
    return httpx.request(
        endpoint.method,
        f"{stack.url(endpoint.service)}{endpoint.path(ids)}",
        headers=headers,
        timeout=30,
        **options,
    )


def test_every_endpoint_answers_each_caller_as_the_policy_says(stack: Stack) -> None:
    ids = {
        "subject": accepted_and_decided(stack, "111222333"),
        "erasable": accepted_and_decided(stack, "123456782"),
    }
    wrong: list[str] = []
    for endpoint in ENDPOINTS:
        for caller in CALLERS:
            expected = 401 if caller is ANONYMOUS else endpoint.allowed.get(caller, 403)
            response = call(stack, endpoint, caller, ids)
            if response.status_code != expected:
                wrong.append(
                    f"{endpoint.name} as {caller.name}: {response.status_code} (expected {expected})"
                )
            if response.status_code in (401, 403):
                assert response.headers["content-type"] == "application/problem+json"
    assert not wrong, "\n".join(wrong)


def test_health_readiness_and_openapi_documents_are_open_to_anyone(stack: Stack) -> None:
    for service in ("signals", "consent", "audit"):
        for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
            assert httpx.get(f"{stack.url(service)}{path}", timeout=10).status_code == 200, (service, path)


def test_expired_wrong_audience_wrongly_signed_and_revoked_tokens_are_refused(stack: Stack) -> None:
    url = f"{stack.url('consent')}/v1/agreements"
    issuer = development_issuer(stack.keys_dir)
    refused = {
        "expired": issuer.issue(
            "gm0363", [Role.PUBLISHER], "consent", lifetime_seconds=120, now=time.time() - 600
        ),
        "wrong audience": issuer.issue("gm0363", [Role.PUBLISHER], ["signals", "audit"]),
        "wrongly signed": DevelopmentIssuer(Ed25519PrivateKey.generate()).issue(
            "gm0363", [Role.PUBLISHER], "consent"
        ),
        "not a token": "gm0363.0000",
    }
    for case, token in refused.items():
        response = httpx.get(url, headers={"authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 401, case
        assert 'error="invalid_token"' in response.headers["www-authenticate"], case

    # A token works until its id is on the revocation list, in every service at once.
    token = issuer.issue("safety-chain", [Role.PRIVACY_OFFICER], ["consent", "audit"])
    token_id = jwt.decode(token, options={"verify_signature": False})["jti"]
    audit = f"{stack.url('audit')}/v1/audit/verify"
    for target in (url, audit):
        assert httpx.get(target, headers={"authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    stack.revoked_tokens_file.write_text(f"# revoked by the test\n{token_id}\n", encoding="utf-8")
    for target in (url, audit):
        response = httpx.get(target, headers={"authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 401 and "revoked" in response.json()["detail"]


# -- the attacks ------------------------------------------------------------------------------


def consent(stack: Stack, caller: Caller, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method, f"{stack.url('consent')}{path}", json=body, headers=caller.headers(stack), timeout=30
    )


def dv_agreement(stack: Stack) -> dict[str, Any]:
    response = consent(stack, PLATFORM, "GET", f"/v1/agreements/{DV}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def granting_bsn_to_veilig_thuis(current: dict[str, Any]) -> dict[str, Any]:
    fields = [*current["recipients"][0]["fields"], "subject.bsn"]
    return {**current, "version": current["version"] + 1, "recipients": [{"partner": VT, "fields": fields}]}


def test_a_partner_can_neither_publish_nor_suspend_an_agreement(stack: Stack) -> None:
    before = dv_agreement(stack)
    grab = consent(stack, VT_EVERY_ROLE, "POST", "/v1/agreements", granting_bsn_to_veilig_thuis(before))
    assert grab.status_code == 403, grab.text
    suspend = consent(stack, VT_EVERY_ROLE, "POST", f"/v1/agreements/{DV}/suspend")
    assert suspend.status_code == 403, suspend.text
    assert dv_agreement(stack) == before


def test_a_municipality_outside_an_agreement_cannot_suspend_it(stack: Stack) -> None:
    before = dv_agreement(stack)
    response = consent(stack, RDAM_ADMIN, "POST", f"/v1/agreements/{DV}/suspend")
    assert response.status_code == 403 and "gm0599 is not a providing municipality" in response.text
    assert dv_agreement(stack) == before


def test_a_widening_change_takes_effect_only_once_a_second_person_approves_it(stack: Stack) -> None:
    current = dv_agreement(stack)
    widened = granting_bsn_to_veilig_thuis(current)
    proposer = Caller("proposer", "gm0363", (Role.AGREEMENT_ADMINISTRATOR, Role.PRIVACY_OFFICER), "a.admin")
    proposed = consent(stack, proposer, "POST", "/v1/agreements", widened)
    assert proposed.status_code == 202, proposed.text
    assert proposed.json()["proposal"]["widens"] == [f"{VT} receives subject.bsn"]

    # Not in force: the next signal reaches Veilig Thuis without the BSN.
    before = stack.post_signal(domestic_violence_signal()).json()["signal_id"]
    delivery = eventually(lambda: stack.delivery_of(VT, before))
    assert "subject.bsn" not in delivery.data and delivery.agreement_version == current["version"]

    # Nobody but a privacy officer of a party to the proposed version, and not the proposer,
    # signs it; each with its own organisation's key.
    for refused in (proposer, AMS_ADMIN, RDAM_OFFICER, VT_RECIPIENT, PLATFORM):
        assert refused.organisation is not None
        answer = sign_proposal(
            stack, refused.organisation, DV, person=refused.person or "x", roles=refused.roles
        )
        assert answer.status_code == 403, (refused.name, answer.text)
    assert dv_agreement(stack)["version"] == current["version"]

    # Amsterdam's privacy officer signs: still not in force, Veilig Thuis has not accepted.
    approved = sign_proposal(stack, "gm0363", DV, person="f.fg")
    assert approved.status_code == 200 and approved.json()["awaiting"] == [VT], approved.text
    assert approved.json()["status"] == "pending"
    pending_signal = stack.post_signal(domestic_violence_signal()).json()["signal_id"]
    assert "subject.bsn" not in eventually(lambda: stack.delivery_of(VT, pending_signal)).data

    # Veilig Thuis accepts its obligations: the version is in force for the next signal.
    accepted = sign_proposal(stack, VT, DV, person="v.fg")
    assert accepted.status_code == 200 and accepted.json()["status"] == "approved", accepted.text
    after = stack.post_signal(domestic_violence_signal()).json()["signal_id"]
    delivery = eventually(lambda: stack.delivery_of(VT, after))
    assert "subject.bsn" in delivery.data and delivery.agreement_version == widened["version"]

    # Every person is in the audit log: the proposal, each signature, and the version in force.
    def trail() -> list[dict[str, Any]] | None:
        records = [
            r
            for r in stack.audit_records(organisation="gm0363")
            if r["agreement_id"] == DV and r["agreement_version"] == widened["version"]
        ]
        decisions = {r["decision"] for r in records}
        return records if {"proposal-pending", "proposal-approved", "agreement-active"} <= decisions else None

    records = eventually(trail)
    in_force = next(r for r in records if r["decision"] == "agreement-active")
    assert "proposed by gm0363/a.admin" in in_force["reasons"]
    assert "approved by gm0363/f.fg for gm0363" in in_force["reasons"]
    assert f"approved by {VT}/v.fg for {VT}" in in_force["reasons"]
    assert f"content {Agreement.model_validate(widened).content_hash}" in in_force["reasons"]
    # ... under the last signing request's correlation id, so that call leads to it.
    assert in_force["correlation_id"] == accepted.headers["x-correlation-id"]
    pending = [r for r in records if r["decision"] == "proposal-pending"]
    assert all(f"widens: {VT} receives subject.bsn" in r["reasons"] for r in pending) and pending

    # A rejected proposal changes nothing and is no longer pending.
    now = dv_agreement(stack)
    wider = {**now, "version": now["version"] + 1, "purposes": [*now["purposes"], "opsporing"]}
    assert consent(stack, AMS_ADMIN, "POST", "/v1/agreements", wider).status_code == 202
    assert consent(stack, AMS_OFFICER, "GET", f"/v1/agreements/{DV}/proposal").status_code == 200
    rejected = sign_proposal(stack, VT, DV, verdict="reject", person="v.fg")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected", rejected.text
    assert dv_agreement(stack) == now
    assert consent(stack, AMS_OFFICER, "GET", f"/v1/agreements/{DV}/proposal").status_code == 404


def test_a_partner_cannot_withdraw_an_objection(stack: Stack) -> None:
    subject = accepted_and_decided(stack, "999990019")
    path = f"/v1/subjects/{subject}/directives"
    objection = {"kind": "objection", "scope": {"category": "huiselijk_geweld"}}
    assert consent(stack, AMS_RIGHTS, "POST", path, objection).status_code == 201
    withdrawal = {"kind": "objection_withdrawn", "scope": {"category": "huiselijk_geweld"}}
    assert consent(stack, VT_EVERY_ROLE, "POST", path, withdrawal).status_code == 403
    assert consent(stack, VT_EVERY_ROLE, "GET", path).status_code == 403
    kinds = [d["kind"] for d in consent(stack, AMS_RIGHTS, "GET", path).json()]
    assert kinds == ["objection"]
    # The audit log names who recorded the objection: organisation and person.
    recorded = eventually(
        lambda: [r for r in stack.audit_records(subject=subject) if r["decision"] == "directive-objection"]
    )
    assert recorded[0]["source"] == "gm0363"
    assert recorded[0]["reasons"] == ["by gm0363/dev-subject-rights"]


def test_a_municipality_cannot_erase_a_subject_it_never_signalled(stack: Stack) -> None:
    subject = accepted_and_decided(stack, "111222333")
    erase = f"{stack.url('signals')}/v1/subjects/{subject}/erasure"
    response = httpx.post(erase, headers=RDAM_RIGHTS.headers(stack), timeout=30)
    assert response.status_code == 403 and "gm0599 has not signalled this subject" in response.text
    # The subject is not silenced: its next signal is accepted and delivered.
    again = stack.post_signal(
        domestic_violence_signal(subject={"kind": "person", "bsn": "111222333", "name": "X"})
    )
    assert again.status_code == 202 and again.json()["status"] == "accepted", again.text
    assert not [r for r in stack.audit_records(subject=subject) if r["event_type"].endswith("erased.v1")]


def test_audit_reads_are_scoped_to_the_readers_organisation_and_are_themselves_logged(stack: Stack) -> None:
    signal_id = stack.post_signal(domestic_violence_signal()).json()["signal_id"]
    eventually(lambda: stack.delivery_of(VT, signal_id))
    records = f"{stack.url('audit')}/v1/audit/records"

    def read(caller: Caller, **params: str) -> httpx.Response:
        return httpx.get(records, params=params, headers=caller.headers(stack), timeout=30)

    assert read(ANONYMOUS).status_code == 401
    assert read(AMS_PUBLISHER).status_code == 403
    everything = eventually(
        lambda: [r for r in read(PLATFORM, signal_id=signal_id).json() if r["target"] == VT]
    )
    assert everything
    # Rotterdam's privacy officer sees nothing of Amsterdam's signal, even when asking by its id.
    assert read(RDAM_OFFICER, signal_id=signal_id).json() == []
    # Veilig Thuis's officer sees what reached Veilig Thuis, under its own delivery id: asked by
    # the platform's signal id, nothing; never a decision or the signal's acceptance.
    assert read(VT_OFFICER, signal_id=signal_id).json() == []
    listed = read(VT_OFFICER).json()
    own = [r for r in listed if r["delivery_id"] == stack.delivery_id(VT, signal_id)]
    assert own and all(VT in (r["source"], r["target"]) and not r["signal_id"] for r in own)
    assert not any(r["event_type"].endswith(("accepted.v1", "decided.v1")) for r in listed)
    # Amsterdam's officer sees its own signal's path.
    assert any(r["event_type"].endswith("accepted.v1") for r in read(AMS_OFFICER, signal_id=signal_id).json())

    # Every read is in the log: who, with which filter, how many results.
    def logged_reads() -> list[dict[str, Any]] | None:
        found = [
            r
            for r in read(PLATFORM, event_type="nl.safetychain.audit.read.v1").json()
            if f"signal_id={signal_id}" in r["reasons"]
        ]
        return found if {r["source"] for r in found} >= {"gm0599", VT, "gm0363", "safety-chain"} else None

    reads = eventually(logged_reads)
    rotterdam = next(r for r in reads if r["source"] == "gm0599")
    assert "0 records" in rotterdam["reasons"] and "scope gm0599" in rotterdam["reasons"]
    assert rotterdam["decision"] == "read" and rotterdam["target"] == "audit"

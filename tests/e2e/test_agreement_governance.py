"""An agreement is a contract every party signs, and four eyes cannot be switched or raced
(issue 18, items 1 and 2): each attack on the running services, refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from shared.contracts.agreements import Agreement
from shared.contracts.crypto.approvals import sign_version
from shared.contracts.crypto.keys import KeyRing, KeyScope
from shared.plumbing.policy import Role
from tests.e2e.agreements import sign_by_every_party, sign_proposal, signature
from tests.e2e.stack import Stack
from tests.e2e.test_signal_flow import domestic_violence_signal
from tests.polling import eventually

DV = "huiselijk-geweld-amsterdam"
VT = "veilig-thuis-amsterdam"
POLICE = "politie-eenheid-amsterdam"
ADMIN = (Role.AGREEMENT_ADMINISTRATOR,)
OFFICER = (Role.PRIVACY_OFFICER,)


def consent(
    stack: Stack,
    organisation: str,
    roles: tuple[Role, ...],
    method: str,
    path: str,
    body: Any = None,
    person: str = "x",
) -> httpx.Response:
    headers = stack.bearer(organisation, *roles, person=person)
    return httpx.request(method, f"{stack.url('consent')}{path}", json=body, headers=headers, timeout=30)


def current(stack: Stack, agreement_id: str) -> dict[str, Any]:
    response = consent(stack, "safety-chain", OFFICER, "GET", f"/v1/agreements/{agreement_id}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def rotterdams_grab(version: int = 1) -> dict[str, Any]:
    """Rotterdam's new agreement: Amsterdam's domestic-violence signals, BSN and name, to the police."""
    return {
        "id": "grab-amsterdam",
        "version": version,
        "title": "Convenant dat Amsterdam nooit tekende",
        "legal_basis": {"law": "Politiewet 2012", "article": "art. 3"},
        "providers": ["gm0599", "gm0363"],
        "recipients": [{"partner": POLICE, "fields": ["category", "subject.bsn", "subject.name"]}],
        "categories": ["huiselijk_geweld"],
        "purposes": ["veiligheid_huiselijk_geweld"],
        "identifying": True,
        "valid_from": "2026-01-01",
        "retention_days": 365,
    }


def decisions_citing(stack: Stack, agreement_id: str, signal_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in stack.audit_records(signal_id=signal_id)
        if r["event_type"].endswith("decided.v1") and r["agreement_id"] == agreement_id
    ]


def test_an_agreement_naming_a_municipality_that_never_signed_never_carries_its_data(stack: Stack) -> None:
    # Rotterdam's administrator proposes an agreement naming Amsterdam as a provider.
    proposed = consent(stack, "gm0599", ADMIN, "POST", "/v1/agreements", rotterdams_grab(), person="r.admin")
    assert proposed.status_code == 202, proposed.text
    assert proposed.json()["proposal"]["awaiting"] == sorted(["gm0363", "gm0599", POLICE])

    # Every other party signs: Rotterdam's own privacy officer and the police.
    assert sign_proposal(stack, "gm0599", "grab-amsterdam", person="r.fg").status_code == 200
    after_others = sign_proposal(stack, POLICE, "grab-amsterdam", person="p.fg")
    assert after_others.status_code == 200 and after_others.json()["awaiting"] == ["gm0363"], (
        after_others.text
    )

    # Rotterdam cannot sign in Amsterdam's place: a statement in Amsterdam's name made with
    # Rotterdam's key, a broken signature, or a second word of its own all count for nothing.
    grab = Agreement.model_validate(rotterdams_grab())
    rotterdam = KeyRing(stack.keys_dir, generate_missing=False, scope=KeyScope.organisation("gm0599"))
    in_amsterdams_name = sign_version(rotterdam.ed25519_private("gm0599"), grab, "gm0363")
    posing = sign_proposal(stack, "gm0599", "grab-amsterdam", person="r.fg", jws=in_amsterdams_name)
    assert posing.status_code == 422 and "signs for itself" in posing.text, posing.text
    header, payload, sealed = signature(stack, "gm0599", rotterdams_grab()).split(".")
    broken = sign_proposal(
        stack, "gm0599", "grab-amsterdam", person="r.fg", jws=f"{header}.{payload}.{sealed[::-1]}"
    )
    assert broken.status_code == 422, broken.text
    twice = sign_proposal(stack, "gm0599", "grab-amsterdam", person="r.fg2")
    assert twice.status_code == 422 and "already" in twice.text, twice.text

    # Not in force: Amsterdam's signals never flow under it.
    listed = consent(stack, "safety-chain", OFFICER, "GET", "/v1/agreements/grab-amsterdam")
    assert listed.status_code == 404, listed.text
    signal_id = stack.post_signal(domestic_violence_signal()).json()["signal_id"]
    eventually(lambda: stack.delivery_of(VT, signal_id))  # decided and delivered where agreed
    assert decisions_citing(stack, "grab-amsterdam", signal_id) == []
    police = [r for r in stack.audit_records(signal_id=signal_id) if r["target"] == POLICE]
    assert police and all(r["decision"] != "permit" for r in police if r["event_type"].endswith("decided.v1"))
    assert grab.content_hash == after_others.json()["content_hash"]


def test_a_pending_proposal_cannot_be_replaced_and_a_signature_names_its_content(stack: Stack) -> None:
    now = current(stack, DV)
    first = {**now, "version": now["version"] + 1, "purposes": [*now["purposes"], "opsporing"]}
    other = {**now, "version": now["version"] + 1, "retention_days": now["retention_days"] + 1}
    assert consent(stack, "gm0363", ADMIN, "POST", "/v1/agreements", first, "a.admin").status_code == 202

    # A second proposal under the same version while the first is pending: refused.
    replaced = consent(stack, "gm0363", ADMIN, "POST", "/v1/agreements", other, "a.admin")
    assert replaced.status_code == 409 and "withdraw it first" in replaced.text
    shown = consent(stack, "gm0363", OFFICER, "GET", f"/v1/agreements/{DV}/proposal", person="f.fg").json()
    assert shown["agreement"] == Agreement.model_validate(first).model_dump(mode="json")

    # A signature of other content than the pending one does not count.
    of_other = sign_proposal(stack, "gm0363", DV, person="f.fg", jws=signature(stack, "gm0363", other))
    assert of_other.status_code == 422 and "other content" in of_other.text, of_other.text
    assert sign_proposal(stack, "gm0363", DV, person="f.fg").status_code == 200

    # Withdrawn explicitly, the first takes its signatures with it; the second starts anew.
    withdrawn = consent(
        stack, "gm0363", ADMIN, "POST", f"/v1/agreements/{DV}/proposal/{first['version']}/withdraw"
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn", withdrawn.text
    renewed = consent(stack, "gm0363", ADMIN, "POST", "/v1/agreements", other, "a.admin")
    assert renewed.status_code == 202 and renewed.json()["proposal"]["signatures"] == [], renewed.text
    assert sorted(renewed.json()["proposal"]["awaiting"]) == ["gm0363", VT]
    # Amsterdam's signature of the first content cannot be carried over.
    carried = sign_proposal(stack, "gm0363", DV, person="f.fg", jws=signature(stack, "gm0363", first))
    assert carried.status_code == 422
    assert (
        consent(
            stack, "gm0363", ADMIN, "POST", f"/v1/agreements/{DV}/proposal/{other['version']}/withdraw"
        ).status_code
        == 200
    )
    assert current(stack, DV) == now


def test_one_person_holding_both_roles_never_approves_their_own_proposal_however_requests_race(
    stack: Stack,
) -> None:
    both = (Role.AGREEMENT_ADMINISTRATOR, Role.PRIVACY_OFFICER)
    now = current(stack, DV)
    theirs = {**now, "version": now["version"] + 1, "retention_days": now["retention_days"] + 7}
    someone_elses = {**now, "version": now["version"] + 1, "retention_days": now["retention_days"] + 3}
    own_signature = signature(stack, "gm0363", theirs)
    path = f"/v1/agreements/{DV}/proposal/{theirs['version']}"

    def approve() -> int:
        return consent(
            stack, "gm0363", both, "POST", f"{path}/approve", {"jws": own_signature}, "p.both"
        ).status_code

    def switch() -> int:
        consent(stack, "gm0363", both, "POST", f"{path}/withdraw", person="p.both")
        return consent(stack, "gm0363", both, "POST", "/v1/agreements", theirs, "p.both").status_code

    for _ in range(4):
        # Someone else's proposal is pending, which the person may sign; at the same moment
        # they withdraw it and propose their own, and send a signature of their own content.
        consent(stack, "gm0363", ADMIN, "POST", f"{path}/withdraw", person="a.admin")
        assert (
            consent(stack, "gm0363", ADMIN, "POST", "/v1/agreements", someone_elses, "a.admin").status_code
            == 202
        )
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = [pool.submit(approve) for _ in range(3)] + [pool.submit(switch)]
            codes = [answer.result() for answer in answers]
        assert all(code in (403, 404, 422) for code in codes[:3]), codes
        pending = consent(stack, "gm0363", OFFICER, "GET", f"/v1/agreements/{DV}/proposal", person="f.fg")
        assert pending.status_code == 200
        assert pending.json()["signatures"] == [], pending.json()
    consent(stack, "gm0363", ADMIN, "POST", f"{path}/withdraw", person="a.admin")
    assert current(stack, DV) == now


def test_a_new_agreement_comes_into_force_once_every_party_signed_and_any_provider_revokes_it(
    stack: Stack,
) -> None:
    shared_by_both = {
        **rotterdams_grab(),
        "id": "gezamenlijk-huiselijk-geweld",
        "title": "Convenant huiselijk geweld Amsterdam en Rotterdam",
        "recipients": [{"partner": VT, "fields": ["category", "subject.name"]}],
    }
    proposed = consent(stack, "gm0599", ADMIN, "POST", "/v1/agreements", shared_by_both, "r.admin")
    assert proposed.status_code == 202, proposed.text
    done = sign_by_every_party(stack, "gezamenlijk-huiselijk-geweld")
    assert done.json()["status"] == "approved", done.text

    # The proof behind it: the version every party signed and each signature.
    proof = consent(stack, "gm0363", OFFICER, "GET", "/v1/agreements/gezamenlijk-huiselijk-geweld/signatures")
    assert proof.status_code == 200
    assert {s["statement"]["organisation"] for s in proof.json()["signatures"]} == {"gm0363", "gm0599", VT}
    assert proof.json()["content_hash"] == Agreement.model_validate(shared_by_both).content_hash

    # Amsterdam revokes it at once: nothing flows under it, and it takes no new version.
    revoked = consent(stack, "gm0363", ADMIN, "POST", "/v1/agreements/gezamenlijk-huiselijk-geweld/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked", revoked.text
    signal_id = stack.post_signal(domestic_violence_signal()).json()["signal_id"]
    eventually(lambda: stack.delivery_of(VT, signal_id))
    assert all(
        r["decision"] != "permit" for r in decisions_citing(stack, "gezamenlijk-huiselijk-geweld", signal_id)
    )
    resumed = {**shared_by_both, "version": 3}
    again = consent(stack, "gm0599", ADMIN, "POST", "/v1/agreements", resumed, "r.admin")
    assert again.status_code == 409 and "revoked" in again.text


def test_a_partner_named_in_a_proposal_reads_the_proposal_to_sign_not_the_version_in_force(
    stack: Stack,
) -> None:
    riec = "riec-amsterdam"
    now = current(stack, DV)
    adding_riec = {
        **now,
        "version": now["version"] + 1,
        "recipients": [*now["recipients"], {"partner": riec, "fields": ["category"]}],
    }
    proposed = consent(stack, "gm0363", ADMIN, "POST", "/v1/agreements", adding_riec, "a.admin")
    assert proposed.status_code == 202 and riec in proposed.json()["proposal"]["awaiting"], proposed.text
    assert consent(stack, riec, OFFICER, "GET", f"/v1/agreements/{DV}/proposal").status_code == 200
    assert consent(stack, riec, OFFICER, "GET", f"/v1/agreements/{DV}").status_code == 403
    assert consent(stack, riec, OFFICER, "GET", f"/v1/agreements/{DV}/signatures").status_code == 403
    withdrawn = consent(
        stack, "gm0363", ADMIN, "POST", f"/v1/agreements/{DV}/proposal/{adding_riec['version']}/withdraw"
    )
    assert withdrawn.status_code == 200

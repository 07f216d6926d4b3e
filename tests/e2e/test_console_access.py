"""Who may see which console page, as a matrix over every page the console serves (read from
its routers, so a new page is in the matrix the day it is added) and the callers that must be
refused: no session, a session whose token is no privacy officer's, a form posted from another
site, and a privacy officer of an organisation the records do not concern."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from services.audit.console import overview, pages
from services.audit.console.session import SESSION_COOKIE
from shared.plumbing.policy import Role
from tests.e2e.citizens import publish_citizen
from tests.e2e.stack import Stack
from tests.polling import eventually

ROUTES = sorted(
    (method, route.path)
    for router in (pages.router, overview.router)
    for route in router.routes
    if isinstance(route, APIRoute)
    for method in route.methods or ()
)
FORMS = {  # what each POST page needs to answer 200 for a caller it lets in
    "/console/search": {"subject": "{subject}"},
    "/console/report": {"subject": "{subject}", "version": "officer"},
    "/console/report/download": {"subject": "{subject}", "version": "officer"},
}


@pytest.fixture(scope="module")
def citizen(stack: Stack) -> dict[str, Any]:
    found = publish_citizen(stack)
    records = stack.audit_records(signal_id=found["signals"][0])
    accepted = next(r for r in records if r["event_type"].endswith("accepted.v1"))
    return {**found, "seq": accepted["seq"]}


def console(stack: Stack, token: str | None) -> httpx.Client:
    cookies = {SESSION_COOKIE: token} if token else {}
    origin = stack.url("audit")
    return httpx.Client(base_url=origin, cookies=cookies, headers={"origin": origin}, timeout=60)


def ask(client: httpx.Client, method: str, path: str, citizen: dict[str, Any]) -> httpx.Response:
    url = path.format(signal_id=citizen["signals"][0], seq=citizen["seq"])
    if url == "/console/proof":
        url += f"?seq={citizen['seq']}"
    form = {name: value.format(**citizen) for name, value in FORMS.get(path, {}).items()}
    return client.request(method, url, data=form if method == "POST" else None)


def test_the_matrix_covers_every_page() -> None:
    paths = {path for _, path in ROUTES}
    expected = {"/console/search", "/console/report", "/console/signals/{signal_id}", "/console/integrity"}
    assert expected <= paths
    assert len(ROUTES) >= 12


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_without_a_session_every_page_leads_to_sign_in(
    stack: Stack, citizen: dict[str, Any], method: str, path: str
) -> None:
    answer = ask(console(stack, None), method, path, citizen)
    assert answer.status_code == 303, answer.text
    assert re.match(r"^/console/sign-in", answer.headers["location"])


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("organisation", "role"),
    [("gm0363", Role.PUBLISHER), ("gm0363", Role.SUBJECT_RIGHTS), ("veilig-thuis-amsterdam", Role.RECIPIENT)],
)
def test_a_session_of_anyone_but_a_privacy_officer_is_refused_on_every_page(
    stack: Stack, citizen: dict[str, Any], method: str, path: str, organisation: str, role: Role
) -> None:
    token = stack.token(organisation, role, audience=("audit",))
    answer = ask(console(stack, token), method, path, citizen)
    assert answer.status_code == 403, answer.text
    assert citizen["subject"] not in answer.text


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p in ROUTES if m == "POST"])
def test_a_form_posted_from_another_site_is_refused(
    stack: Stack, citizen: dict[str, Any], method: str, path: str
) -> None:
    token = stack.token("gm0363", Role.PRIVACY_OFFICER, audience=("audit",))
    client = console(stack, token)
    client.headers["origin"] = "https://evil.example"
    assert ask(client, method, path, citizen).status_code == 403


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_an_officer_sees_only_records_of_their_own_organisation(
    stack: Stack, citizen: dict[str, Any], method: str, path: str
) -> None:
    amsterdam = console(stack, stack.token("gm0363", Role.PRIVACY_OFFICER, audience=("audit",)))
    rotterdam = console(stack, stack.token("gm0599", Role.PRIVACY_OFFICER, audience=("audit",)))
    own = ask(amsterdam, method, path, citizen)
    assert own.status_code in (200, 303), own.text
    other = ask(rotterdam, method, path, citizen)
    if "{signal_id}" in path or "{seq}" in path:
        assert other.status_code == 404  # not in Rotterdam's scope: as if it did not exist
    # Amsterdam's records name the agreement they rest on; nothing Rotterdam sees does
    assert "zvh-casusoverleg-amsterdam" not in other.text
    if method == "POST" and path in FORMS:
        assert citizen["subject"] in own.text and "zvh-casusoverleg-amsterdam" in own.text


def test_every_page_that_shows_records_logs_the_read_under_the_officers_name(
    stack: Stack, citizen: dict[str, Any]
) -> None:
    person = "Lotte Logcheck"
    token = stack.token("gm0363", Role.PRIVACY_OFFICER, person=person, audience=("audit",))
    client = console(stack, token)
    shown = {
        ("GET", "/console/signals/{signal_id}"): "signal_id=",
        ("GET", "/console/records/{seq}/proof"): "seq=",
        ("GET", "/console/agreements"): "page=agreements",
        ("GET", "/console/dashboard"): "page=dashboard",
        ("GET", "/console/integrity/flagged"): "page=flagged",
        ("POST", "/console/search"): f"subject={citizen['subject']}",
        ("POST", "/console/report"): "report=officer",
    }
    for method, path in shown:
        assert ask(client, method, path, citizen).status_code == 200, path

    def reads() -> list[str] | None:
        mine = [
            " ".join(r["reasons"])
            for r in stack.audit_records(event_type="nl.safetychain.audit.read.v1")
            if f"by gm0363/{person}" in r["reasons"]
        ]
        return mine if all(any(c in read for read in mine) for c in shown.values()) else None

    logged = eventually(reads)
    assert citizen["bsn"] not in " ".join(logged)

"""Console sessions: the cookie's attributes, sign-in through the one policy (authenticated is
not authorised), no form from another site, the security headers, and the development sign-in
only where the development issuer is. On a small app with the audit service's own access set-up
(services/http_common.py) and the console on it, as create_app wires them."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Annotated

import httpx
import jwt
import pytest
import yaml
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from devstack.keys import DEV_ISSUER, development_issuer
from services.audit.console import CONTENT_SECURITY_POLICY, add_console
from services.audit.console import development_issuer as console_development_issuer
from services.audit.console.providers import provider_key
from services.audit.console.session import SECURE_SESSION_COOKIE, SESSION_COOKIE, console_grant
from services.audit.console.templating import render
from services.audit.settings import AuditSettings
from services.http_auth import Grant
from services.http_common import access_for, add_access_control
from shared.contracts.crypto.keys import KeyRing, generate_development_keys
from shared.contracts.registry import Registry
from shared.plumbing.policy import Action, Resource, Role
from shared.plumbing.settings import PROJECT_ROOT

HOST = "console.test"


async def signalled_by_rotterdam() -> Resource:
    return Resource(signalled_by=frozenset({"gm0599"}))


def settings_for(tmp_path: Path, **overrides: object) -> AuditSettings:
    return AuditSettings.model_validate(
        {"keys_dir": tmp_path / "keys", "revoked_tokens_file": tmp_path / "revoked.txt", **overrides}
    )


def production_settings(tmp_path: Path) -> AuditSettings:
    """Production, with what production requires of the broker connection (TLS, SASL)."""
    return settings_for(
        tmp_path,
        environment="production",
        kafka_bootstrap_servers="kafka.example:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="audit",
        kafka_sasl_password="secret",
    )


def console_app(settings: AuditSettings) -> FastAPI:
    keys = KeyRing.for_service("audit", settings.keys_dir, generate_missing=False)
    registry = Registry.load(settings.config_dir, keys)
    app = FastAPI()
    add_access_control(app, access_for(settings, registry, keys, "audit"), settings.max_request_bytes)
    add_console(app, settings, registry, sign_in_key=bytes(32))

    # a page that needs more than reading the log: erasing a subject Rotterdam signalled
    @app.get("/console/test/erase")
    async def erase_page(
        request: Request,
        grant: Annotated[Grant, Depends(console_grant(Action.ERASE_SUBJECT, signalled_by_rotterdam))],
    ) -> Response:
        return render(request, "home.html")

    return app


@pytest.fixture
def settings(tmp_path: Path) -> AuditSettings:
    settings = settings_for(tmp_path)
    generate_development_keys(settings.keys_dir, [DEV_ISSUER], algorithms=("ed25519",))
    return settings


def client_for(settings: AuditSettings, scheme: str = "http") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=console_app(settings))
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://{HOST}", follow_redirects=False)


@pytest.fixture
async def client(settings: AuditSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(settings) as test_client:
        yield test_client


def same_site(scheme: str = "http") -> dict[str, str]:
    return {"origin": f"{scheme}://{HOST}"}


def session_cookie(response: httpx.Response) -> SimpleCookie:
    cookies = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookies.load(header)
    return cookies


async def sign_in(
    client: httpx.AsyncClient, organisation: str = "safety-chain", scheme: str = "http"
) -> httpx.Response:
    return await client.post(
        "/console/sign-in/development",
        data={"organisation": organisation, "person": "Fatima de Groot", "next": "/console/"},
        headers=same_site(scheme),
    )


def token(settings: AuditSettings, organisation: str, *roles: Role, lifetime: int = 900) -> str:
    return development_issuer(settings.keys_dir).issue(
        organisation, roles, "audit", person="someone", lifetime_seconds=lifetime
    )


async def test_without_a_session_a_page_redirects_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/console/")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?next=/console/"
    page = await client.get("/console/sign-in?next=/console/")
    assert page.status_code == 200 and 'name="next" value="/console/"' in page.text


async def test_development_sign_in_keeps_the_token_in_a_strict_http_only_cookie(
    client: httpx.AsyncClient, settings: AuditSettings
) -> None:
    response = await sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    cookie = session_cookie(response)[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/console"
    assert not cookie["secure"]  # plain http (a laptop's make run): a Secure cookie would be lost
    assert 3500 <= int(cookie["max-age"]) <= 3600  # never outlives its token (an hour at most)
    # the session is the development issuer's token: privacy officer of the chosen organisation
    principal = console_app(settings).state.access.verifier.verify(cookie.value)
    assert principal.organisation == "safety-chain" and principal.roles == frozenset({Role.PRIVACY_OFFICER})
    assert principal.actor == "safety-chain/Fatima de Groot"
    home = await client.get("/console/")
    assert home.status_code == 200
    assert "Fatima de Groot" in home.text and "Safety-chain platformbeheer" in home.text


async def test_over_https_the_cookie_is_host_prefixed_and_secure(settings: AuditSettings) -> None:
    async with client_for(settings, "https") as secure_client:
        response = await sign_in(secure_client, scheme="https")
        assert SESSION_COOKIE not in session_cookie(response)
        cookie = session_cookie(response)[SECURE_SESSION_COOKIE]
        # what the browser demands of a __Host- cookie: Secure, Path=/, no Domain
        assert cookie["secure"] is True and cookie["path"] == "/" and not cookie["domain"]
        assert cookie["httponly"] is True and cookie["samesite"].lower() == "strict"
        assert (await secure_client.get("/console/")).status_code == 200  # and it is the session


async def test_in_production_the_cookie_is_host_prefixed_and_secure_even_on_a_plain_http_request(
    tmp_path: Path,
) -> None:
    production = production_settings(tmp_path)
    # a proxy that forgot X-Forwarded-Proto: the request looks like plain http
    async with client_for(production, "http") as client:
        # a session that no longer proves anything is cleared under the __Host- name, Secure
        client.cookies.set(SECURE_SESSION_COOKIE, "ended.session.token", domain=HOST, path="/")
        response = await client.get("/console/")
        assert response.status_code == 303 and response.headers["location"].endswith("&session=ended")
        cleared = session_cookie(response)[SECURE_SESSION_COOKIE]
        assert cleared.value == "" and cleared["secure"] is True and cleared["path"] == "/"
        assert SESSION_COOKIE not in session_cookie(response)
        signed_out = await client.post("/console/sign-out", headers=same_site())
        assert session_cookie(signed_out)[SECURE_SESSION_COOKIE]["secure"] is True
        # the unprefixed name, which any plain-http page or sibling subdomain could plant, is no session
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, "planted.session.token", domain=HOST, path="/console")
        planted = await client.get("/console/")
        assert planted.status_code == 303 and "session=ended" not in planted.headers["location"]


async def test_sign_out_clears_the_cookie(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    response = await client.post("/console/sign-out", headers=same_site())
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?session=signed-out"
    cleared = session_cookie(response)[SESSION_COOKIE]
    assert cleared.value == "" and int(cleared["max-age"]) == 0 and cleared["path"] == "/console"
    assert (await client.get("/console/")).status_code == 303


async def test_a_pasted_token_of_a_privacy_officer_signs_in(
    client: httpx.AsyncClient, settings: AuditSettings
) -> None:
    officer = token(settings, "veilig-thuis-amsterdam", Role.PRIVACY_OFFICER)
    response = await client.post(
        "/console/sign-in/token", data={"token": officer, "next": "/console/"}, headers=same_site()
    )
    assert response.status_code == 303
    assert session_cookie(response)[SESSION_COOKIE].value == officer


async def test_a_publishers_token_is_authenticated_but_not_authorised(
    client: httpx.AsyncClient, settings: AuditSettings
) -> None:
    publisher = token(settings, "gm0363", Role.PUBLISHER)
    response = await client.post("/console/sign-in/token", data={"token": publisher}, headers=same_site())
    assert response.status_code == 403
    assert "only privacy officers read the audit log" in response.text
    assert SESSION_COOKIE not in session_cookie(response)


async def test_a_token_that_proves_nothing_shows_the_form_again_with_the_reason(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/console/sign-in/token", data={"token": "not-a-token"}, headers=same_site())
    assert response.status_code == 400
    assert "not a JWT" in response.text and 'aria-invalid="true"' in response.text
    assert SESSION_COOKIE not in session_cookie(response)


async def test_an_ended_session_goes_back_to_sign_in_and_loses_its_cookie(
    client: httpx.AsyncClient, settings: AuditSettings
) -> None:
    expired = development_issuer(settings.keys_dir).issue(
        "safety-chain", [Role.PRIVACY_OFFICER], "audit", now=time.time() - 3000, lifetime_seconds=900
    )
    client.cookies.set(SESSION_COOKIE, expired, domain=HOST, path="/console")
    response = await client.get("/console/test/erase?page=2")
    assert response.status_code == 303
    assert (
        response.headers["location"] == "/console/sign-in?next=/console/test/erase%3Fpage%3D2&session=ended"
    )
    assert session_cookie(response)[SESSION_COOKIE].value == ""
    notice = await client.get(response.headers["location"])
    assert "Uw sessie is verlopen" in notice.text


async def test_a_signed_in_officer_the_policy_refuses_gets_the_403_page(client: httpx.AsyncClient) -> None:
    await sign_in(client, organisation="gm0363")
    refused = await client.get("/console/test/erase")
    assert refused.status_code == 403
    assert "gm0363 has not signalled this subject" in refused.text
    assert "Afmelden" in refused.text  # still signed in: the page says who, and offers sign-out
    await client.post("/console/sign-out", headers=same_site())
    await sign_in(client, organisation="safety-chain")
    assert (await client.get("/console/test/erase")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},  # says nowhere where it comes from
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"referer": "https://evil.example/console/"},
        {"origin": f"http://{HOST}.evil.example"},
    ],
)
async def test_a_form_from_another_site_is_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/console/sign-in/development",
        data={"organisation": "safety-chain", "person": "Mallory"},
        headers=headers,
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in session_cookie(response)
    await sign_in(client)
    assert (await client.post("/console/sign-out", headers=headers)).status_code == 403


async def test_a_form_with_only_a_referer_from_this_host_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/console/sign-in/development",
        data={"organisation": "safety-chain", "person": "Fatima"},
        headers={"referer": f"http://{HOST}/console/sign-in"},
    )
    assert response.status_code == 303


async def test_development_sign_in_refuses_an_unknown_organisation_or_a_strange_name(
    client: httpx.AsyncClient,
) -> None:
    for organisation, person in (("audit", "F"), ("nobody", "F"), ("gm0363", "<script>"), ("gm0363", "a/b")):
        response = await client.post(
            "/console/sign-in/development",
            data={"organisation": organisation, "person": person},
            headers=same_site(),
        )
        assert response.status_code == 400, (organisation, person)
        assert SESSION_COOKIE not in session_cookie(response)
        assert "<script>" not in response.text  # what was typed comes back escaped


async def test_console_responses_carry_the_security_headers(client: httpx.AsyncClient) -> None:
    for path in ("/console/sign-in", "/console/", "/console/no-such-page", "/console/static/console.css"):
        response = await client.get(path)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["x-content-type-options"] == "nosniff", path
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert (await client.get("/console/sign-in")).headers["cache-control"] == "no-store"


async def test_the_rest_of_the_service_keeps_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "content-security-policy" not in response.headers
    page = await client.get("/console/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


async def test_pages_speak_the_chosen_language(client: httpx.AsyncClient) -> None:
    assert '<html lang="nl">' in (await client.get("/console/sign-in")).text
    switched = await client.get("/console/language/en", params={"next": "/console/sign-in"})
    assert switched.status_code == 303 and switched.headers["location"] == "/console/sign-in"
    page = await client.get("/console/sign-in")
    assert '<html lang="en">' in page.text and "Sign in with an access token" in page.text
    assert (await client.get("/console/language/fr")).status_code == 404


async def test_development_sign_in_is_offered_only_where_the_development_issuer_is(tmp_path: Path) -> None:
    # development settings, but no development issuer key in the key folder (a service's own
    # key set, as docker compose and Kubernetes mount it)
    bare = settings_for(tmp_path)
    assert console_development_issuer(bare) is None
    async with client_for(bare) as without_issuer:
        page = await without_issuer.get("/console/sign-in")
        assert 'action="/console/sign-in/development"' not in page.text
        assert 'action="/console/sign-in/token"' in page.text
        refused = await without_issuer.post(
            "/console/sign-in/development",
            data={"organisation": "safety-chain", "person": "F"},
            headers=same_site(),
        )
        assert refused.status_code == 404
    # production never trusts the development issuer, even with its key at hand
    generate_development_keys(bare.keys_dir, [DEV_ISSUER], algorithms=("ed25519",))
    production = production_settings(tmp_path)
    assert console_development_issuer(production) is None
    assert console_development_issuer(bare) is not None


async def test_production_offers_no_pasted_token_sign_in(tmp_path: Path) -> None:
    settings = production_settings(tmp_path)
    async with client_for(settings, scheme="https") as production:
        page = await production.get("/console/sign-in")
        assert page.status_code == 200 and 'action="/console/sign-in/token"' not in page.text
        refused = await production.post(
            "/console/sign-in/token",
            data={"token": "any.pasted.token"},  # refused before anything looks at it
            headers=same_site("https"),
        )
        assert refused.status_code == 404
        assert not session_cookie(refused)


AMSTERDAM_PROVIDER = "https://login.amsterdam.example/realms/veiligheid"


def with_amsterdam_provider(tmp_path: Path) -> AuditSettings:
    """Development settings whose config names Amsterdam's identity provider, with the console
    as its OpenID Connect client (the provider itself is never asked here: see the browser test
    tests/e2e/console/test_console_provider_sign_in.py for the real one)."""
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    (config / "console-secret").write_text("not-a-real-secret\n", encoding="utf-8")
    issuers = yaml.safe_load((config / "issuers.yaml").read_text(encoding="utf-8"))
    issuers["issuers"].append(
        {
            "issuer": AMSTERDAM_PROVIDER,
            "jwks_uri": f"{AMSTERDAM_PROVIDER}/protocol/openid-connect/certs",
            "organisations": ["gm0363"],
            "organisation_claim": "organisation",
            "sign_in": {"client_id": "safety-chain-console", "client_secret_file": "console-secret"},
        }
    )
    (config / "issuers.yaml").write_text(yaml.safe_dump(issuers), encoding="utf-8")
    settings = settings_for(tmp_path, config_dir=config)
    generate_development_keys(settings.keys_dir, [DEV_ISSUER], algorithms=("ed25519",))
    return settings


async def test_the_sign_in_page_offers_the_organisations_that_have_a_provider(tmp_path: Path) -> None:
    async with client_for(settings_for(tmp_path)) as without_providers:
        assert (
            'action="/console/sign-in/provider"' not in (await without_providers.get("/console/sign-in")).text
        )
    async with client_for(with_amsterdam_provider(tmp_path)) as client:
        page = (await client.get("/console/sign-in")).text
        offered = page.split('action="/console/sign-in/provider"', 1)[1].split("</form>", 1)[0]
        assert '<option value="gm0363">Gemeente Amsterdam</option>' in offered
        assert "gm0599" not in offered  # Rotterdam has no provider configured
        # the form leads to the provider's login page: the policy lets it, and only it
        policy = (await client.get("/console/sign-in")).headers["content-security-policy"]
        assert "form-action 'self' https://login.amsterdam.example;" in policy
        unknown = await client.get("/console/sign-in/provider", params={"organisation": "gm0599"})
        assert unknown.status_code == 400
        assert "Voor deze organisatie is geen inlogpagina ingesteld." in unknown.text


async def test_an_answer_no_sign_in_waits_for_is_refused(tmp_path: Path) -> None:
    async with client_for(with_amsterdam_provider(tmp_path)) as client:
        answer = await client.get("/console/sign-in/callback", params={"code": "stolen", "state": "guessed"})
        assert answer.status_code == 400
        assert "Aanmelden bij uw organisatie is niet gelukt" in answer.text
        assert not any(
            name.startswith(("sc_console_session", "sc_console_provider")) for name in session_cookie(answer)
        )


async def test_an_ended_provider_session_goes_back_to_its_provider(tmp_path: Path) -> None:
    settings = with_amsterdam_provider(tmp_path)
    expired = development_issuer(settings.keys_dir).issue(
        "gm0363", [Role.PRIVACY_OFFICER], "audit", now=time.time() - 3000, lifetime_seconds=900
    )
    id_token = jwt.encode({"iss": AMSTERDAM_PROVIDER, "sub": "someone"}, "k" * 32, algorithm="HS256")
    async with client_for(settings) as client:
        client.cookies.set(SESSION_COOKIE, expired, domain=HOST, path="/console")
        client.cookies.set("sc_console_provider", id_token, domain=HOST, path="/console")
        ended = await client.get("/console/search?q=1")
        assert ended.status_code == 303
        assert ended.headers["location"] == (
            f"/console/sign-in/provider?provider={provider_key(AMSTERDAM_PROVIDER)}&next=/console/search%3Fq%3D1"
        )
        # the session's cookie goes, the provider's stays to find the way back
        assert [c for c in ended.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)]
        assert not [c for c in ended.headers.get_list("set-cookie") if c.startswith("sc_console_provider")]
        # another provider's ID token is no way back: the plain sign-in page
        client.cookies.set(SESSION_COOKIE, expired, domain=HOST, path="/console")
        stranger = jwt.encode({"iss": "https://idp.elsewhere.example"}, "k" * 32, algorithm="HS256")
        client.cookies.set("sc_console_provider", stranger, domain=HOST, path="/console")
        plain = await client.get("/console/search")
        assert plain.headers["location"].startswith("/console/sign-in?next=")

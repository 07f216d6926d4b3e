"""Behind a proxy: only a trusted proxy's X-Forwarded-For and X-Forwarded-Proto are believed.

The services here trust 127.0.0.2 as their proxy (SC_TRUSTED_PROXIES), as production trusts the
Ingress controller's range. A request the test sends from 127.0.0.2 plays the Ingress forwarding
a client; one sent from 127.0.0.1 plays anyone else, forging the same headers. What the services
then make of the address and the scheme shows where it matters: the failed-login limit (keyed on
the client's address) and the console's session cookie (`__Host-` and Secure over https).
"""

from __future__ import annotations

from collections.abc import Iterator
from http.cookies import SimpleCookie

import httpx
import pytest

from devstack.kafka import KafkaAccess
from services.audit.console.session import SECURE_SESSION_COOKIE, SESSION_COOKIE
from tests.conftest import fresh_prefix
from tests.e2e.stack import Stack

PROXY = "127.0.0.2"
ELSEWHERE = "127.0.0.1"
FAILED_LOGINS_ALLOWED = 6


@pytest.fixture(scope="module")
def stack(kafka_access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = {"SC_TRUSTED_PROXIES": PROXY, "SC_RATE_LIMIT": f"{FAILED_LOGINS_ALLOWED}/hour"}
    with Stack(kafka_access, fresh_prefix(), tmp_path_factory.mktemp("proxy"), settings) as running:
        yield running


def from_address(stack: Stack, source: str) -> httpx.Client:
    """A client of the audit console whose connections leave from `source`."""
    origin = stack.url("audit")
    return httpx.Client(
        base_url=origin,
        transport=httpx.HTTPTransport(local_address=source),
        headers={"origin": origin},
        timeout=60,
    )


def sign_in_with(client: httpx.Client, token: str, client_address: str) -> httpx.Response:
    return client.post(
        "/console/sign-in/token",
        data={"token": token, "next": "/console/"},
        headers={"x-forwarded-for": client_address, "x-forwarded-proto": "https"},
    )


def cookies_of(response: httpx.Response) -> SimpleCookie:
    cookies = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookies.load(header)
    return cookies


def test_through_the_trusted_proxy_the_console_sees_https_and_sets_a_host_prefixed_secure_cookie(
    stack: Stack,
) -> None:
    form = {"organisation": "safety-chain", "person": "Fatima de Groot", "next": "/console/"}
    forwarded = {"x-forwarded-for": "198.51.100.20", "x-forwarded-proto": "https"}
    # the Ingress terminated TLS and says so
    with from_address(stack, PROXY) as proxy:
        signed_in = proxy.post("/console/sign-in/development", data=form, headers=forwarded)
    assert signed_in.status_code == 303, signed_in.text
    cookie = cookies_of(signed_in)[SECURE_SESSION_COOKIE]
    assert cookie["secure"] is True and cookie["path"] == "/" and cookie["httponly"] is True
    assert SESSION_COOKIE not in cookies_of(signed_in)
    # anyone else claiming https over plain http is not believed: no Secure cookie it could not keep
    with from_address(stack, ELSEWHERE) as elsewhere:
        plain = elsewhere.post("/console/sign-in/development", data=form, headers=forwarded)
    assert plain.status_code == 303, plain.text
    assert not cookies_of(plain)[SESSION_COOKIE]["secure"]
    assert SECURE_SESSION_COOKIE not in cookies_of(plain)


def test_failed_sign_ins_are_limited_per_real_client_behind_the_proxy(stack: Stack) -> None:
    with from_address(stack, PROXY) as proxy:
        # one client guessing tokens through the Ingress uses up its own budget ...
        for _ in range(FAILED_LOGINS_ALLOWED):
            assert sign_in_with(proxy, "not-a-token", "198.51.100.7").status_code == 400
        assert sign_in_with(proxy, "not-a-token", "198.51.100.7").status_code == 429
        # ... and only its own: another client behind the same Ingress is not locked out
        assert sign_in_with(proxy, "not-a-token", "198.51.100.8").status_code == 400


def test_a_forged_x_forwarded_for_from_an_untrusted_peer_does_not_escape_the_limit(stack: Stack) -> None:
    with from_address(stack, ELSEWHERE) as elsewhere:
        # a new client address in every request: all of them are still the one peer they came from
        answers = [
            sign_in_with(elsewhere, "not-a-token", f"192.0.2.{n}").status_code
            for n in range(FAILED_LOGINS_ALLOWED + 1)
        ]
    assert answers == [400] * FAILED_LOGINS_ALLOWED + [429]

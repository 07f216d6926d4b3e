"""The HTTP guard every service installs: tokens, rate limits, body limit, problem+json and the
access log, on a small app that uses the very same set-up (services/http_common.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Body, Depends, FastAPI
from fastapi import Path as PathParam
from structlog.testing import capture_logs

from services.http_auth import Access, Grant, require
from services.http_common import PROBLEM_JSON, add_access_control
from shared.contracts.crypto.keys import KeyRing
from shared.contracts.registry import Registry
from shared.plumbing.credentials import (
    DEVELOPMENT_ISSUER,
    DevelopmentIssuer,
    Issuer,
    RevocationList,
    TokenVerifier,
)
from shared.plumbing.policy import Action, Resource, Role
from shared.plumbing.settings import PROJECT_ROOT

KEY = Ed25519PrivateKey.generate()
ISSUER = DevelopmentIssuer(KEY)
LIMIT = 2048
PSEUDONYM = "0123456789abcdef0123456789abcdef"


async def signalled(pseudonym: Annotated[str, PathParam()]) -> Resource:
    return Resource(signalled_by=frozenset({"gm0363"}))


def app(tmp_path: Path, rate_limit: str = "1000/minute") -> FastAPI:
    registry = Registry.load(PROJECT_ROOT / "config", KeyRing(tmp_path / "keys", generate_missing=False))
    verifier = TokenVerifier(
        [Issuer(issuer=DEVELOPMENT_ISSUER, development=True, organisations="*")],
        registry,
        "audit",
        RevocationList(tmp_path / "revoked.txt"),
        KEY.public_key(),
    )
    application = FastAPI()
    add_access_control(application, Access(verifier, rate_limit), LIMIT)

    @application.post("/v1/subjects/{pseudonym}/things")
    async def things(
        grant: Annotated[Grant, Depends(require(Action.READ_DIRECTIVES, signalled))],
        text: Annotated[str, Body(media_type="text/plain")] = "",
    ) -> dict[str, int]:
        return {"read": len(text)}

    return application


def bearer(organisation: str = "gm0363", role: Role = Role.SUBJECT_RIGHTS) -> dict[str, str]:
    return {"authorization": f"Bearer {ISSUER.issue(organisation, [role], 'audit')}"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as test_client:
        yield test_client


URL = f"/v1/subjects/{PSEUDONYM}/things"


async def test_no_token_401_wrong_caller_403_right_caller_200_all_problem_json(
    client: httpx.AsyncClient,
) -> None:
    anonymous = await client.post(URL)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == PROBLEM_JSON
    assert anonymous.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    other = await client.post(URL, headers=bearer("gm0599"))
    assert other.status_code == 403 and "gm0599 has not signalled this subject" in other.json()["detail"]
    partner = await client.post(URL, headers=bearer("veilig-thuis-amsterdam", Role.PRIVACY_OFFICER))
    assert partner.status_code == 403
    allowed = await client.post(URL, headers=bearer(), content=b"hello", params={})
    assert allowed.status_code == 200, allowed.text


async def test_a_declared_oversized_body_is_refused_before_it_is_read(client: httpx.AsyncClient) -> None:
    response = await client.post(
        URL, headers={**bearer(), "content-type": "text/plain"}, content=b"x" * (LIMIT + 1)
    )
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM_JSON


async def test_a_streamed_oversized_body_is_cut_off_at_the_limit(client: httpx.AsyncClient) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1024
            yield b"x" * 1024

    response = await client.post(URL, headers={**bearer(), "content-type": "text/plain"}, content=chunks())
    assert response.status_code == 413
    assert response.json()["detail"] == f"the request body exceeds {LIMIT} bytes"


async def test_a_credential_over_its_rate_limit_gets_429_with_retry_after(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=app(tmp_path, rate_limit="3/minute"))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as limited:
        token = bearer()
        statuses = [(await limited.post(URL, headers=token)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await limited.post(URL, headers=token)
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        # another credential has its own budget
        assert (await limited.post(URL, headers=bearer(role=Role.PRIVACY_OFFICER))).status_code == 200
        # guessing tokens is limited too, per client address
        guesses = [
            (await limited.post(URL, headers={"authorization": "Bearer x"})).status_code for _ in range(4)
        ]
        assert guesses == [401, 401, 401, 429]


async def test_the_access_log_names_route_status_and_organisation_never_the_pseudonym(
    client: httpx.AsyncClient,
) -> None:
    with capture_logs() as logs:
        await client.post(URL, headers=bearer(), params={"q": "secret"})
    (call,) = [line for line in logs if line["event"] == "api_call"]
    assert call["route"] == "/v1/subjects/{pseudonym}/things"
    assert call["status"] == 200 and call["organisation"] == "gm0363" and call["token_id"]
    assert PSEUDONYM not in json.dumps(logs, default=str)
    assert "secret" not in json.dumps(logs, default=str)
    assert "dev-" not in json.dumps(call, default=str)  # the person is not logged

"""Submit a signal over HTTP (the signals service's intake, POST /v1/signals), for a municipal
system that does not publish to Kafka itself.

    tokens = ClientCredentials.with_private_key(issuer, "gm0363-system", key, scope="signals")
    answer = HttpPublisher("https://signals.example.nl", tokens).submit(signal)

`token` is any callable that returns a valid access token for the signals service: a
`ClientCredentials` (the organisation's own identity provider), or a fixed token. The answer is
what the service said: 202 accepted (the signal is on its way; `body["signal_id"]`), or a
problem+json refusal with its status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Submitted:
    status: int
    body: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return self.status == 202


class HttpPublisher:
    def __init__(self, signals_url: str, token: Callable[[], str], *, timeout: float = 30) -> None:
        self._url = signals_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def submit(self, signal: Mapping[str, Any]) -> Submitted:
        """POST one signal (a SignalSubmission as JSON; resubmitting the same signal_id is
        idempotent). Raises httpx.HTTPError when the service cannot be reached, and the token
        source's error (TokenRequestError) when no token can be had."""
        headers = {"authorization": f"Bearer {self._token()}"}
        response = httpx.post(
            f"{self._url}/v1/signals", json=dict(signal), headers=headers, timeout=self._timeout
        )
        body = response.json() if response.content else {}
        return Submitted(response.status_code, body if isinstance(body, dict) else {"body": body})

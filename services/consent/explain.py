"""Explain: why would (or wouldn't) a partner receive a signal? A dry run of the decision."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from services.consent.decision import Outcome, SignalFacts, decide
from services.consent.state import ConsentState
from shared.contracts.registry import Registry


@dataclass(frozen=True)
class Explanation:
    recipient: str
    outcome: Outcome


class Explainer:
    """Why would (or wouldn't) a partner receive this signal? Decides, delivers nothing."""

    def __init__(self, state: ConsentState, registry: Registry) -> None:
        self._state = state
        self._registry = registry

    async def explain(
        self, facts: SignalFacts, subject: str | None, recipient: str | None, now: datetime | None = None
    ) -> list[Explanation]:
        await asyncio.gather(self._state.agreements.catch_up(), self._state.directives.catch_up())
        recipients = [recipient] if recipient else self._registry.partner_ids
        directives = self._state.directives_of(subject) if subject else ()
        moment = now or datetime.now(UTC)
        agreements = self._state.latest_agreements()  # suspended ones explain themselves
        return [Explanation(r, decide(facts, r, agreements, moment, directives)) for r in recipients]

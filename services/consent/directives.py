"""Recording a subject's directives: consent given or withdrawn, objection (AVG art. 21).

Every change is a record on consent.directives.v1 (compacted, keyed by subject pseudonym),
signed by the consent service, in force for the next signal decided once committed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime

from services.consent.state import ConsentState
from shared.contracts.agreements import Directive, DirectiveKind, DirectiveScope, SubjectDirectives
from shared.kafka import SignedPublisher
from shared.logging import get_logger
from shared.policy import Principal
from shared.topics import CONSENT_DIRECTIVES

log = get_logger()


class DirectiveAdmin:
    def __init__(self, state: ConsentState, publisher: SignedPublisher) -> None:
        self._state = state
        self._publisher = publisher
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def record(
        self,
        subject: str,
        kind: DirectiveKind,
        scope: DirectiveScope,
        by: Principal,
        correlation_id: str | None = None,
    ) -> SubjectDirectives:
        """Add a directive to the subject's set; in force for the next signal decided."""
        # One writer per subject in this process; the topic keeps the whole set per subject.
        async with self._locks[subject]:
            await self._state.directives.catch_up()
            directive = Directive(
                kind=kind,
                scope=scope,
                recorded_at=datetime.now(UTC),
                recorded_by=by.organisation,
                actor=by.actor,
            )
            event = SubjectDirectives(
                subject_pseudonym=subject, directives=(*self._state.directives_of(subject), directive)
            )
            await self._publisher.publish(
                CONSENT_DIRECTIVES, subject, event, subject=subject, correlation_id=correlation_id
            )
            await self._state.directives.catch_up()
        log.info("directive_recorded", subject=subject, kind=kind, by=by.organisation)
        return event

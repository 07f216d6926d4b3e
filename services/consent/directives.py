"""Recording a subject's directives: consent given or withdrawn, objection (AVG art. 21).

Every change is a record on consent.directives.v1 (compacted, keyed by subject pseudonym,
numbered by `sequence` so a replayed older set is ignored), signed by the consent service, in
force for the next signal decided once committed.

Each municipality is the controller of what it provided (ADR 0009): a directive it records
governs its own data only, so another municipality's withdrawal never lifts its objection; the
platform's privacy officer records directives for every municipality's data.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime

from services.consent.state import ConsentState
from shared.contracts.agreements import Directive, DirectiveKind, DirectiveScope, SubjectDirectives
from shared.plumbing.kafka import SignedPublisher
from shared.plumbing.logging import get_logger
from shared.plumbing.policy import Principal

log = get_logger()
WRITE_ATTEMPTS = 5


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
        """Add a directive to the subject's set; in force for the next signal decided.

        One writer per subject in this process; another consent instance may write the same
        sequence at the same moment, and the view keeps the later record. So the directive is
        written again on top of the other's set until the view holds it: none is lost.
        """
        directive = Directive(
            kind=kind,
            scope=scope,
            municipality=None if by.is_platform_privacy_officer else by.organisation,
            recorded_at=datetime.now(UTC),
            recorded_by=by.organisation,
            actor=by.actor,
        )
        async with self._locks[subject]:
            for _ in range(WRITE_ATTEMPTS):
                await self._state.directives.catch_up()
                event = SubjectDirectives(
                    subject_pseudonym=subject,
                    sequence=self._state.directive_sequence(subject) + 1,
                    directives=(*self._state.directives_of(subject), directive),
                )
                await self._publisher.publish(subject, event, subject=subject, correlation_id=correlation_id)
                await self._state.directives.catch_up()
                if directive in self._state.directives_of(subject):
                    break
                log.warning("directive_write_raced", subject=subject)
            else:
                raise RuntimeError(f"the directive for {subject} did not hold after {WRITE_ATTEMPTS} writes")
        log.info("directive_recorded", subject=subject, kind=kind, by=by.organisation)
        return event


def visible_to(directives: tuple[Directive, ...], by: Principal) -> tuple[Directive, ...]:
    """What `by` may read of a subject's directives: a municipality those that govern its data
    (its own and the platform's), never another municipality's (they would tell it who else
    signalled the person); the platform's privacy officer every one."""
    if by.is_platform_privacy_officer:
        return directives
    return tuple(d for d in directives if d.municipality in (None, by.organisation))

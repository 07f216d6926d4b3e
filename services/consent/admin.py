"""Changing what consent decides on: agreement versions, their parties' signatures, suspension.

An agreement is a contract between all its parties. A version that widens what anyone receives
(a new agreement included) is a proposal until every party, each providing municipality and
each recipient partner, has signed its exact content hash with its own key; then it is in
force. A version that only narrows, a suspension and a revocation take effect at once. Every
change is a record on a compacted topic, signed by the consent service; the use cases return
only after this instance's own state shows it, and every instance's processor catches up before
its next batch. Every check runs again under the lock, on the state read under it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from services.consent.agreements import registry_problems
from services.consent.approvals import KeyOf, accepted_by, counts_toward
from services.consent.changes import widenings
from services.consent.state import ConsentState
from shared.contracts.agreements import (
    Agreement,
    AgreementProposed,
    AgreementPublished,
    AgreementStatus,
    PartySignature,
    ProposalStatus,
    SignatureType,
)
from shared.contracts.crypto.approvals import ApprovalSignatureError, verify_statement
from shared.contracts.registry import Registry
from shared.plumbing.kafka import SignedPublisher
from shared.plumbing.logging import get_logger
from shared.plumbing.policy import Action, Principal, Resource, authorise

SERVICE_ID = "consent"
CONFIGURATION = "configuration"
log = get_logger()


class AgreementConflict(ValueError):
    """The change does not follow from the agreement's current version."""


@dataclass(frozen=True)
class ChangeOutcome:
    """A new version published at once (narrowing), or waiting for approval (widening)."""

    agreement: Agreement
    proposal: AgreementProposed | None = None

    @property
    def pending(self) -> bool:
        return self.proposal is not None and self.proposal.status is ProposalStatus.PENDING


class NoProposalError(LookupError):
    """No pending proposal of that version."""


class NotAllowedError(PermissionError):
    """The policy, asked again under the lock on the proposal as it now is, refuses."""


class InvalidSignatureError(ValueError):
    """The signature is no valid word of the caller's organisation on the pending content."""


def signers_resource(proposal: AgreementProposed) -> Resource:
    """Who may sign a proposal: the parties of the proposed version, never its proposer."""
    return Resource(
        parties=proposal.agreement.parties,
        providers=frozenset(proposal.agreement.providers),
        proposed_by=proposal.proposed_by,
    )


@dataclass(frozen=True)
class ConfiguredAgreement:
    """An agreement file and the signatures its parties gave its content (files beside it)."""

    agreement: Agreement
    signatures: tuple[PartySignature, ...] = ()


class AgreementAdmin:
    def __init__(self, state: ConsentState, publisher: SignedPublisher, registry: Registry) -> None:
        self._state = state
        self._publisher = publisher
        self._registry = registry
        self._key_of: KeyOf = registry.ed25519_public
        self._lock = asyncio.Lock()

    def current_record(self, agreement_id: str) -> AgreementPublished | None:
        """The version in force (or suspended, or revoked), with its parties' signatures."""
        return self._state.agreements.get(agreement_id)

    def current(self, agreement_id: str) -> Agreement | None:
        record = self.current_record(agreement_id)
        return record.agreement if record else None

    def proposal(self, agreement_id: str) -> AgreementProposed | None:
        """The latest proposal for the agreement, if it is still pending and still applies."""
        proposal = self._state.proposals.get(agreement_id)
        if proposal is None or proposal.status is not ProposalStatus.PENDING:
            return None
        current = self.current(agreement_id)
        if current is not None and current.version >= proposal.agreement.version:
            return None  # superseded: another version came into force meanwhile
        return proposal

    async def refreshed(self) -> None:
        await asyncio.gather(self._state.agreements.catch_up(), self._state.proposals.catch_up())

    async def _publish(
        self,
        agreement: Agreement,
        by: str,
        approved: Agreement,
        signatures: tuple[PartySignature, ...],
        proposed_by: str | None = None,
        correlation_id: str | None = None,
    ) -> Agreement:
        event = AgreementPublished(
            agreement=agreement,
            published_by=by,
            published_at=datetime.now(UTC),
            proposed_by=proposed_by,
            approved=approved,
            signatures=signatures,
        )
        await self._publisher.publish(agreement.id, event, correlation_id=correlation_id)
        await self._state.agreements.catch_up()
        log.info(
            "agreement_published", agreement=agreement.id, version=agreement.version, status=agreement.status
        )
        return agreement

    async def _narrow(
        self,
        current: AgreementPublished,
        agreement: Agreement,
        by: str,
        proposed_by: str | None,
        correlation_id: str | None,
    ) -> Agreement:
        """In force at once: it only narrows what every party signed, which it carries along."""
        return await self._publish(
            agreement, by, current.approved, current.signatures, proposed_by, correlation_id
        )

    async def _record_proposal(
        self, proposal: AgreementProposed, correlation_id: str | None = None
    ) -> AgreementProposed:
        # Numbered after the latest record of this agreement's proposals (under the lock), so a
        # replay of an earlier one is older than what every view holds.
        previous = self._state.proposals.get(proposal.agreement.id)
        proposal = proposal.model_copy(update={"sequence": previous.sequence + 1 if previous else 1})
        await self._publisher.publish(proposal.agreement.id, proposal, correlation_id=correlation_id)
        await self._state.proposals.catch_up()
        log.info(
            "agreement_proposal",
            agreement=proposal.agreement.id,
            version=proposal.agreement.version,
            status=proposal.status,
            awaiting=sorted(proposal.awaiting),
        )
        return proposal

    def _widens(self, current: AgreementPublished | None, agreement: Agreement) -> tuple[str, ...]:
        """What `agreement` widens, against the version in force and against what the parties
        signed (a narrowing of a narrowing still only narrows the signed version)."""
        if current is None:
            return widenings(None, agreement)
        return widenings(current.agreement, agreement) or widenings(current.approved, agreement)

    async def seed(self, configured: list[ConfiguredAgreement]) -> list[str]:
        """Bring the files' agreements that are newer than what the topic holds toward force.

        The files are the operator's reviewed configuration, and the signature files beside
        them each party's word on that content. A version every party signed is published; one
        that only narrows the version in force is too; any other is proposed, carrying the
        signatures it has, and waits for the rest (`safety-chain agreements approve`)."""
        published = []
        async with self._lock:
            await self.refreshed()
            for item in configured:
                agreement = item.agreement
                current = self.current_record(agreement.id)
                if current is not None and current.agreement.version >= agreement.version:
                    if current.agreement.version == agreement.version and current.agreement != agreement:
                        log.warning(
                            "agreement_file_differs", agreement=agreement.id, version=agreement.version
                        )
                    continue
                signed = tuple(s for s in item.signatures if accepted_by((s,), agreement, self._key_of))
                widens = self._widens(current, agreement)
                if current is not None and not widens:
                    await self._narrow(current, agreement, CONFIGURATION, None, None)
                    published.append(agreement.id)
                elif {s.statement.organisation for s in signed} == agreement.parties:
                    await self._publish(agreement, CONFIGURATION, agreement, signed)
                    published.append(agreement.id)
                else:
                    await self._propose_configured(agreement, signed, widens)
        return published

    async def _propose_configured(
        self, agreement: Agreement, signed: tuple[PartySignature, ...], widens: tuple[str, ...]
    ) -> None:
        pending = self.proposal(agreement.id)
        if pending is not None and pending.content_hash == agreement.content_hash:
            have = {s.statement.organisation for s in pending.signatures}
            new = tuple(s for s in signed if s.statement.organisation not in have)
            if new:  # the files bring signatures the API did not: they may complete it
                await self._with_signatures(pending, (*pending.signatures, *new), CONFIGURATION, None)
            return
        if pending is not None:
            log.warning("agreement_file_waits_for_pending_proposal", agreement=agreement.id)
            return
        proposal = AgreementProposed(
            agreement=agreement,
            content_hash=agreement.content_hash,
            organisation=CONFIGURATION,
            proposed_by=CONFIGURATION,
            proposed_at=datetime.now(UTC),
            widens=widens,
            signatures=signed,
        )
        await self._record_proposal(proposal)

    async def new_version(
        self, agreement: Agreement, by: Principal, correlation_id: str | None = None
    ) -> ChangeOutcome:
        """Publish a narrowing version at once; propose a widening one for every party to sign."""
        problems = registry_problems(agreement, self._registry)
        if problems:
            raise ValueError("; ".join(problems))
        async with self._lock:
            await self.refreshed()
            current = self.current_record(agreement.id)
            if current is not None and current.agreement.status is AgreementStatus.REVOKED:
                raise AgreementConflict(f"{agreement.id} is revoked: it takes no new version")
            pending = self.proposal(agreement.id)
            if pending is not None:
                raise AgreementConflict(
                    f"{agreement.id} v{pending.agreement.version} is waiting for its parties' signatures:"
                    " withdraw it first"
                )
            expected = current.agreement.version + 1 if current else 1
            if agreement.version != expected:
                raise AgreementConflict(
                    f"{agreement.id}: the next version is {expected}, not {agreement.version}"
                )
            widens = self._widens(current, agreement)
            if current is not None and not widens:
                await self._narrow(current, agreement, by.organisation, by.actor, correlation_id)
                return ChangeOutcome(agreement)
            proposal = AgreementProposed(
                agreement=agreement,
                content_hash=agreement.content_hash,
                organisation=by.organisation,
                proposed_by=by.actor,
                proposed_at=datetime.now(UTC),
                widens=widens,
            )
            return ChangeOutcome(agreement, await self._record_proposal(proposal, correlation_id))

    def _pending(self, agreement_id: str, version: int) -> AgreementProposed:
        proposal = self.proposal(agreement_id)
        if proposal is None or proposal.agreement.version != version:
            raise NoProposalError(f"no pending proposal of {agreement_id} v{version}")
        return proposal

    async def sign(
        self,
        agreement_id: str,
        version: int,
        jws: str,
        expected: SignatureType,
        by: Principal,
        correlation_id: str | None = None,
    ) -> ChangeOutcome:
        """Add the caller's organisation's signed word to a pending proposal. The last
        acceptance brings the version into force; a rejection ends the proposal."""
        async with self._lock:
            await self.refreshed()
            proposal = self._pending(agreement_id, version)
            # Asked again here, on the proposal as it is now: what the caller was allowed
            # before the lock may no longer hold (another proposal, another proposer).
            verdict = authorise(by, Action.APPROVE_AGREEMENT, signers_resource(proposal))
            if not verdict:
                raise NotAllowedError(verdict.reason)
            try:
                statement = verify_statement(self._key_of(by.organisation), jws)
            except (ApprovalSignatureError, LookupError) as error:
                raise InvalidSignatureError(
                    f"not signed with the key of {by.organisation}: {error}"
                ) from error
            if statement.organisation != by.organisation:
                raise InvalidSignatureError(
                    f"{by.organisation} signs for itself, not for {statement.organisation}"
                )
            if statement.type is not expected:
                raise InvalidSignatureError(f"the signature says {statement.type}, the request {expected}")
            signature = PartySignature(statement=statement, signed_by=by.actor, jws=jws)
            problem = counts_toward(proposal, signature, self._key_of)
            if problem is not None:
                raise InvalidSignatureError(problem)
            if statement.type is SignatureType.REJECT:
                rejected = proposal.model_copy(update={"signatures": (*proposal.signatures, signature)})
                decided = _decided(rejected, ProposalStatus.REJECTED, by.actor)
                return ChangeOutcome(proposal.agreement, await self._record_proposal(decided, correlation_id))
            return await self._with_signatures(
                proposal, (*proposal.signatures, signature), by.actor, correlation_id
            )

    async def _with_signatures(
        self,
        proposal: AgreementProposed,
        signatures: tuple[PartySignature, ...],
        by: str,
        correlation_id: str | None,
    ) -> ChangeOutcome:
        """Record the proposal with these (verified) signatures; when every party has accepted,
        the version comes into force. Call under the lock."""
        signed = proposal.model_copy(update={"signatures": signatures})
        if signed.awaiting:  # each signature was verified as it was added
            return ChangeOutcome(proposal.agreement, await self._record_proposal(signed, correlation_id))
        # In force first, then the proposal marked: a crash in between leaves a proposal
        # that `proposal()` already sees as superseded, never an approval without effect.
        await self._publish(
            signed.agreement,
            signed.organisation,
            signed.agreement,
            signed.signatures,
            signed.proposed_by,
            correlation_id,
        )
        decided = _decided(signed, ProposalStatus.APPROVED, by)
        return ChangeOutcome(proposal.agreement, await self._record_proposal(decided, correlation_id))

    async def withdraw(
        self, agreement_id: str, version: int, by: Principal, correlation_id: str | None = None
    ) -> ChangeOutcome:
        """Withdraw a pending proposal, and every signature given to it."""
        async with self._lock:
            await self.refreshed()
            proposal = self._pending(agreement_id, version)
            governing = self.current(agreement_id) or proposal.agreement
            verdict = authorise(
                by,
                Action.PROPOSE_AGREEMENT,
                Resource(parties=governing.parties, providers=frozenset(governing.providers)),
            )
            if not verdict:
                raise NotAllowedError(verdict.reason)
            withdrawn = _decided(proposal, ProposalStatus.WITHDRAWN, by.actor)
            return ChangeOutcome(proposal.agreement, await self._record_proposal(withdrawn, correlation_id))

    async def end(
        self, agreement_id: str, status: AgreementStatus, by: Principal, correlation_id: str | None = None
    ) -> Agreement:
        """Suspend (nothing flows until a version every party signed resumes it) or revoke
        (nothing flows again, and no new version) at once: either only narrows what was signed."""
        assert status is not AgreementStatus.ACTIVE, "resuming widens: every party signs it"
        async with self._lock:
            await self.refreshed()
            current = self.current_record(agreement_id)
            if current is None:
                raise KeyError(agreement_id)
            if current.agreement.status in (status, AgreementStatus.REVOKED):
                return current.agreement
            ended = current.agreement.model_copy(
                update={"version": current.agreement.version + 1, "status": status}
            )
            return await self._narrow(current, ended, by.organisation, by.actor, correlation_id)


def _decided(proposal: AgreementProposed, status: ProposalStatus, by: str) -> AgreementProposed:
    return proposal.model_copy(update={"status": status, "decided_by": by, "decided_at": datetime.now(UTC)})

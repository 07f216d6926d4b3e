"""The services subscribe to what the topic table says they consume, and to nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.consent.state import ConsentState
from services.consent.transport import PROCESSED
from shared.contracts.topics import (
    AUDIT_CHECKPOINTS,
    CENTRAL_TOPICS,
    Party,
    audited_topics_pattern,
    consumed_by,
    is_compacted,
    partner_topic,
)
from shared.plumbing.settings import CommonSettings


def test_every_consumer_in_the_table_is_a_service_or_an_organisation_that_reads_its_own_topic() -> None:
    for spec in CENTRAL_TOPICS:
        assert Party.PARTNER not in spec.consumers and Party.MUNICIPALITY not in spec.consumers, spec.name
        assert spec.producers, f"{spec.name}: nobody writes it"
    assert Party.PARTNER in partner_topic("x").consumers


def test_consents_state_views_follow_exactly_the_state_topics_consent_consumes(tmp_path: Path) -> None:
    state = ConsentState(
        CommonSettings(keys_dir=tmp_path),
        "consent",
        X25519PrivateKey.generate(),
        Ed25519PrivateKey.generate().public_key(),
        Ed25519PrivateKey.generate().public_key(),
        lambda organisation: Ed25519PrivateKey.generate().public_key(),
    )
    followed = {view.spec.name for view in state.views}
    assert followed == {spec.name for spec in consumed_by(Party.CONSENT) if is_compacted(spec)}


def test_audits_subscription_matches_exactly_what_the_table_says_audit_consumes() -> None:
    pattern = re.compile(audited_topics_pattern("p."))
    for spec in [*CENTRAL_TOPICS, partner_topic("riec-amsterdam")]:
        logged = Party.AUDIT in spec.consumers and spec is not AUDIT_CHECKPOINTS
        assert bool(pattern.fullmatch(spec.prefixed("p."))) == logged, spec.name
    assert not pattern.fullmatch("signals.accepted.v1"), "another deployment's topic"


def test_consents_processor_reads_the_other_topics_consent_consumes() -> None:
    processed = {spec.name for spec in PROCESSED}
    followed = {spec.name for spec in consumed_by(Party.CONSENT) if is_compacted(spec)}
    assert processed == {"signals.accepted.v1", "subjects.erasure.v1"}
    assert processed | followed == {spec.name for spec in consumed_by(Party.CONSENT)}

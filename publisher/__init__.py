"""The publisher SDK: what a municipal system runs to publish signals over Kafka.

An intake record's value is the signal's JSON sealed to the signals service's X25519 key (no
personal data in clear on Kafka, not even on the intake topic), and the record is signed with
the municipality's Ed25519 key over the exact value bytes and the CloudEvents headers.

Or over HTTP (`HttpPublisher`), with an access token the system obtains itself from its
organisation's identity provider by client credentials (`ClientCredentials`).
"""

from publisher.http import HttpPublisher, Submitted
from publisher.intake import IntakePublisher
from shared.client_credentials import ClientCredentials, TokenRequestError
from shared.contracts.intake import intake_record

__all__ = [
    "ClientCredentials",
    "HttpPublisher",
    "IntakePublisher",
    "Submitted",
    "TokenRequestError",
    "intake_record",
]

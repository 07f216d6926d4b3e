"""The partner SDK: what a chain partner runs to receive its deliveries.

`PartnerClient` consumes the partner's own topic (read_committed), verifies the consent
service's signature over each delivery, decrypts it with the partner's X25519 key, hands the
application a typed `ReceivedSignal`, and acknowledges it with a receipt signed by the
partner's Ed25519 key on exchange.receipts.v1. Erasure notices on the same topic reach the
application's erasure handler and are acknowledged too. `Witness` witnesses the audit log: it
cosigns a checkpoint only when it extends the last one accepted; its access token for the audit
service comes from a callable, e.g. a `ClientCredentials` of the partner's identity provider.
See README.md, "Partner SDK".
"""

from partner.client import ErasureHandler, PartnerClient, PartnerIdentity, ProcessedSignals
from partner.deliveries import DeliveryRefused, ErasureRequest, ReceivedSignal, open_delivery, open_notice
from partner.witness import Witness, Witnessed, WitnessRefused
from shared.client_credentials import ClientCredentials, TokenRequestError

__all__ = [
    "ClientCredentials",
    "DeliveryRefused",
    "ErasureHandler",
    "ErasureRequest",
    "PartnerClient",
    "PartnerIdentity",
    "ProcessedSignals",
    "ReceivedSignal",
    "TokenRequestError",
    "Witness",
    "WitnessRefused",
    "Witnessed",
    "open_delivery",
    "open_notice",
]

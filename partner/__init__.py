"""The partner SDK: what a chain partner runs to receive its deliveries.

`PartnerReceiver` consumes the partner's own topic (read_committed), opens each delivery with
the partner's X25519 private key and hands back a typed `ReceivedSignal`.
"""

from partner.receiver import PartnerReceiver, ReceivedSignal

__all__ = ["PartnerReceiver", "ReceivedSignal"]

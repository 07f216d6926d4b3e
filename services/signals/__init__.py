"""The signals service: where a signal enters safety-chain.

http.py (POST /v1/signals) -> submissions.py (answer the caller; write a sealed, signed intake
record through publishing.py) -> signals.intake.v1 <- municipal systems on Kafka (publisher/)
kafka_intake.py (one Kafka transaction per batch) -> intake.py, the one pipeline (validation.py,
ledger.py for idempotency, keystore.py for per-subject data keys) -> signals.accepted.v1,
subjects.keys.v1 or signals.rejected.v1. erasure.py shreds a subject's key. app.py wires them.
"""

"""The audit service: where every exchange is logged, tamper-evidently, and accounted for.

log/ is the log itself: ingest.py consumes the topics, facts.py turns each record into a
metadata-only fact (catalogue.py: one row per event type), a store keeps it as an AuditRecord
in an RFC 9162 Merkle tree, checkpoints.py signs the tree's heads, proofs.py and
verification.py prove and check it. queries/ is what privacy officers ask of it (search, the
subject access report, timeline, statistics, exports); http.py serves both, console/ shows
them, api.py is the module tools import. app.py composes the service, settings.py configures it.
"""

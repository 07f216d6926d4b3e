"""The audit log: where a fact is ingested, kept, proven and verified.

ingest.py (the Kafka subscription) -> facts.py (one record -> one metadata-only AuditFact) ->
leaf.py (its exact leaf bytes) -> store.py (the repository port: records, their RFC 9162
Merkle tree, checkpoints) ; checkpoints.py signs and publishes the tree heads, outside.py reads
them back from the topic, proofs.py proves one record, verification.py recomputes the tree.
"""

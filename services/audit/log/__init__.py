"""The audit log: where a fact is ingested, kept, proven and verified.

ingest.py (the Kafka consume loop, a poll per store transaction) -> facts.py (one record -> one
metadata-only AuditFact, its writer checked; what each event type states is statements.py, its
row in catalogue.py says what it means, who may write it and how views show it) -> record.py (the
AuditRecord a store keeps) -> leaf.py (its exact leaf bytes) -> store.py (the storage port:
records, their RFC 9162 Merkle tree, checkpoints, the offsets read; memory_store.py and
sql_store.py; which records to read is query.py). checkpoints.py signs and publishes tree heads,
outside.py reads them back from the topic, proofs.py proves one record and verification.py
recomputes the tree.
"""

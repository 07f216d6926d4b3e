"""The audit service: where every exchange is logged, tamper-evidently.

facts.py (a Kafka record -> one metadata-only AuditFact) -> leaf.py (its exact leaf bytes) ->
store.py (the repository port: records, their RFC 9162 Merkle tree, checkpoints; in memory,
SQLite by default, PostgreSQL) ; verification.py recomputes the tree; transport.py consumes the
topics, http.py serves queries and verification to privacy officers.
"""

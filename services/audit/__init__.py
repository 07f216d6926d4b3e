"""The audit service: where every exchange is logged, tamper-evidently.

facts.py (a Kafka record -> one metadata-only AuditFact) -> chain.py (hash chain, pure) ->
store.py (append-only repository; SQLite default) ; transport.py consumes the topics,
http.py serves queries and verification to privacy officers.
"""

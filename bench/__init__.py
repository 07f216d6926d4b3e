"""Benchmarks: how fast safety-chain is, measured here and never asserted in tests.

`python -m bench.micro` times the hot pure functions in-process; `python -m bench.audit_ingest`
times the audit service alone on a backlog; `python -m bench.throughput` runs the three services
against a real local broker, the whole path up to the audit log, beside a transactional relay.
See bench/README.md.
"""

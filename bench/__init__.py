"""Benchmarks: how fast safety-chain is, measured here and never asserted in tests.

`python -m bench.micro` times the hot pure functions in-process; `python -m bench.throughput`
runs the three services against a real local broker. See bench/README.md.
"""

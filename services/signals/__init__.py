"""The signals service: where a signal enters safety-chain.

http.py (POST /v1/signals) -> intake.py (validate, pseudonymise, seal) -> publishing.py
(signals.accepted.v1 or signals.rejected.v1). app.py wires them; __main__ runs it.
"""

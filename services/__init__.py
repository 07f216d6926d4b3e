"""The three safety-chain services. Each is its own process: `python -m services.<name>`.

signals  where a signal enters: validated, pseudonymised, sealed        (port 8001)
consent  where it is decided and delivered: agreements, minimisation   (port 8002)
audit    where every exchange is logged, tamper-evidently              (port 8003)
"""

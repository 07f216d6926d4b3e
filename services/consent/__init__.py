"""The consent service: where a signal is decided and delivered.

agreements.py (convenanten as data) -> decision.py (pure: permit/deny with reasons) ->
enforcement.py (decisions and minimised, sealed deliveries for one accepted signal) ->
transport.py (consume-transform-produce in one Kafka transaction per batch).
"""

"""The consent service: where a signal is decided and delivered.

state.py (agreements, directives and subject keys, rebuilt from compacted topics) ->
decision.py (pure: permit/deny with reasons and obligations) -> enforcement.py (decisions and
minimised, sealed, signed deliveries for one accepted signal) -> transport.py (consume-transform-
produce in one Kafka transaction per batch). admin.py and http.py change agreements and
directives and explain decisions; agreements.py reads and checks agreement files.
"""

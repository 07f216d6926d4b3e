"""safety-chain's shared library: the contracts every service speaks.

Event envelope and schemas (`contracts`, `envelope`), topics (`topics`), the organisation
registry (`registry`), crypto (`crypto`), settings and logging. Nothing here imports a
service; services import only from here and talk to each other only over Kafka.
"""

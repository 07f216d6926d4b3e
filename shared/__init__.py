"""What the services share, in two layers (held by import-linter, see pyproject.toml):

- `contracts`: what crosses a boundary: events, envelope, topic table, registry, signing,
  sealing, the transparency-log formats, the intake record format. Depends on pydantic and
  cryptography (and small format libraries), imports nothing else of ours; the partner and
  publisher SDKs are built on it alone.
- `plumbing`: how the services run: Kafka clients, the transactional loop, SQL, settings,
  logging, metrics, tracing, backups, Kafka admin and ACLs, the generated documents.
- `kafka_records`: how every consumer (services and partner SDK) reads fetched records.

Nothing here imports a service; services talk to each other only over Kafka.
"""

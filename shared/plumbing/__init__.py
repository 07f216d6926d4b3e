"""How the services run: Kafka clients and the transactional loop, SQL, settings, logging,
metrics, tracing, backups, Kafka admin and ACLs, and the documents derived from the contracts.
Imports the contracts, never a service."""

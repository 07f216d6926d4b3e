"""Developer stack: a real local Apache Kafka broker and a supervisor for `make run`.

Nothing in here is used by the services in production; they only see
`KAFKA_BOOTSTRAP_SERVERS`.
"""

"""The contracts: everything that crosses a boundary between services, organisations and
auditors. Frozen pydantic models versioned by their CloudEvents type, the envelope, the topic
table, the organisation registry, the byte layouts of signing and sealing, and the
transparency-log formats. Pure: no I/O beyond reading a key or registry file, no service, no
plumbing."""

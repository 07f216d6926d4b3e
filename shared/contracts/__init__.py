"""The message contracts: frozen pydantic models, versioned by their CloudEvents type."""

"""Deployment artefacts of safety-chain: docker-compose lives at the repo root, Kubernetes here."""

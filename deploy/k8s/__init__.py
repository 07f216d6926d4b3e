"""Kustomize manifests for Kubernetes; `generate.py` derives topics, users and config from the source."""

"""What kustomize builds from deploy/k8s, once per session: the base and the production overlay.

The pinned kustomize is fetched into .cache/deploy/ the first time (deploy/k8s/validate.py);
when it cannot be, every test that needs a build fails: nothing here is skipped.
"""

from __future__ import annotations

from typing import Any

import pytest

from deploy.k8s import validate


@pytest.fixture(scope="session")
def builds() -> dict[str, list[dict[str, Any]]]:
    """`kustomize build` of the base and of each overlay, by name ("base", "production")."""
    return {name: validate.build(path) for name, path in validate.BUILDS.items()}

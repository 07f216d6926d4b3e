"""How the project reads its YAML (organisations, issuers, agreements): PyYAML's safe loading,
through libyaml's C parser when PyYAML has it (its Linux wheels do), else the pure-Python one.

Both build the same objects with the same safe constructor and report errors with a position;
the C parser is about ten times faster, which every start-up and the unit tests (which load the
configuration hundreds of times) notice.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

SAFE_LOADER: Final[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, with the C parser when there is one."""
    return yaml.load(text, Loader=SAFE_LOADER)


def compose(text: str) -> yaml.Node | None:
    """`yaml.compose` (the node tree, with positions), with the C parser when there is one."""
    return yaml.compose(text, Loader=SAFE_LOADER)

"""How the project reads its YAML (organisations, issuers, agreements) and writes it (the
generated documents): PyYAML's safe loading and dumping, through libyaml's C parser and emitter
when PyYAML has them (its Linux wheels do), else the pure-Python ones.

Both build the same objects with the same safe constructor and representer, report errors with a
position and write the same text (the contract documents' test holds the committed file to it);
the C side is six to ten times faster, which every start-up, generator run and the unit tests
(which load the configuration hundreds of times) notice.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

SAFE_LOADER: Final[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SAFE_DUMPER: Final[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, with the C parser when there is one."""
    return yaml.load(text, Loader=SAFE_LOADER)


def compose(text: str) -> yaml.Node | None:
    """`yaml.compose` (the node tree, with positions), with the C parser when there is one."""
    return yaml.compose(text, Loader=SAFE_LOADER)

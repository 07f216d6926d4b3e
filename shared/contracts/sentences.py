"""Sentences with codes: a table of English templates, one per code, that records carry filled
with parameters, and that a reader turns back into code and parameters to say them in its own
language. What a proposal widens (widenings.py) and why the audit log flagged a record
(services/audit/log/flags.py) are such tables; consent's reasons (reasons.py) are too, with a
grammar of their own around them.

A template never changes once records carry it (old records would stop reading back): a new
wording is a new code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

Code = TypeVar("Code", bound=StrEnum)


def template_pattern(template: str) -> re.Pattern[str]:
    """The template as a regular expression: each {name} a named group (lazy, so the fixed
    words between them decide where a parameter ends)."""
    parts = re.split(r"\{(\w+)\}", template)
    expression = "".join(
        re.escape(part) if n % 2 == 0 else f"(?P<{part}>.+?)" for n, part in enumerate(parts)
    )
    return re.compile(f"^{expression}$")


@dataclass(frozen=True)
class Phrase(Generic[Code]):
    """One sentence read back: its code and the parameters it names."""

    code: Code
    params: dict[str, str] = field(default_factory=dict)


class Sentences(Generic[Code]):
    """The table of one kind of sentence; the first template that matches a text wins."""

    def __init__(self, templates: Mapping[Code, str]) -> None:
        self.templates = dict(templates)
        self._patterns = {code: template_pattern(template) for code, template in self.templates.items()}

    def write(self, code: Code, **params: object) -> str:
        """The English sentence a record carries."""
        return self.templates[code].format(**{name: str(value) for name, value in params.items()})

    def read(self, text: str) -> Phrase[Code] | None:
        """The code and parameters of a sentence written from this table; None for any other
        text (show that as it is)."""
        for code, pattern in self._patterns.items():
            found = pattern.match(text)
            if found:
                return Phrase(code, found.groupdict())
        return None

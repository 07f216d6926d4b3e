"""Why the audit log flagged a record instead of taking it as a fact: a code per kind of
problem and the one English sentence each is written as, first among the flagged record's
reasons (facts.py `_signature_verdict`), followed by `claimed <decision>` and the reasons the
record itself gave.

The console reads the sentences back into codes (`parse_flag`) and says them in the reader's
language; change a sentence and old records stop reading back: add a code instead.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from shared.contracts.sentences import Phrase, Sentences


class FlagCode(StrEnum):
    UNREGISTERED_SOURCE = "unregistered_source"
    MAY_NOT_WRITE = "may_not_write"
    NOT_SIGNED = "not_signed"
    NO_KEY = "no_key"
    MISPLACED = "misplaced"
    CLAIMED = "claimed"


TEMPLATES: Final[dict[FlagCode, str]] = {
    FlagCode.UNREGISTERED_SOURCE: (
        "ce_source names no registered organisation (urn:nld:oin:<OIN>:systeem:<name>)"
    ),
    FlagCode.MAY_NOT_WRITE: "ce_source {organisation} may not write {event_type}",
    FlagCode.NOT_SIGNED: "not signed by {organisation}",
    FlagCode.NO_KEY: "no key of {organisation}",
    FlagCode.MISPLACED: "{event_type} does not belong on {topic}",
    FlagCode.CLAIMED: "claimed {decision}",
}

FLAGS: Final = Sentences(TEMPLATES)


def flag(code: FlagCode, **params: str) -> str:
    """The sentence for `code`, as the log keeps it."""
    return FLAGS.write(code, **params)


def parse_flag(text: str) -> Phrase[FlagCode] | None:
    return FLAGS.read(text)

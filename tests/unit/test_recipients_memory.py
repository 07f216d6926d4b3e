"""Consent's memory of who received what each municipality provided about a subject (ADR 0009):
an erasure reaches the partners that received the erased data, and leaves the rest remembered."""

from __future__ import annotations

from services.consent.transport import SubjectMemory

AMS, AVN = "gm0363", "gm0518"
VT, RIEC = "veilig-thuis-amsterdam", "riec-amsterdam"


def remembered() -> SubjectMemory:
    return (
        SubjectMemory()
        .delivered(AMS, frozenset({VT}))
        .delivered(AMS, frozenset({RIEC}))
        .delivered(AVN, frozenset({RIEC}))
        .delivered(AVN, frozenset())  # a signal no partner received still counts its municipality
    )


def test_each_delivery_that_changes_the_memory_takes_the_next_sequence() -> None:
    memory = remembered()
    assert memory.sequence == 3
    assert memory.provided == {AMS: frozenset({VT, RIEC}), AVN: frozenset({RIEC})}
    assert memory.delivered(AMS, frozenset({VT})) is memory  # nothing new: nothing to write


def test_a_municipalitys_erasure_reaches_the_partners_that_received_its_data_only() -> None:
    memory = remembered()
    assert memory.recipients_of(AVN) == frozenset({RIEC})
    after = memory.erased(AVN)
    assert after.provided == {AMS: frozenset({VT, RIEC})} and after.sequence == 4
    assert memory.erased("gm0599") is memory  # it provided nothing: nothing to notify or write


def test_the_platforms_erasure_reaches_every_partner_and_clears_the_memory() -> None:
    memory = remembered()
    assert memory.recipients_of(None) == frozenset({VT, RIEC})
    after = memory.erased(None)
    assert after.provided == {} and after.sequence == 4
    assert after.erased(None) is after

"""Masking of personal fields by role (按角色脱敏): the one policy the API, the console and exports call.

Owns which privileges exist (`Privilege`) and what a viewer without
`REVEAL_PERSONAL` sees of each kind of personal value. The role model that
grants privileges comes with the authentication work; it hands a set of
`Privilege` here. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum

from marketloop.core.identifiers import mask_email, mask_id_card, mask_name, mask_phone


class Privilege(StrEnum):
    """What a role may see of personal data."""

    REVEAL_PERSONAL = "reveal_personal"  # names, phones, ID numbers, emails in clear


class PersonalKind(StrEnum):
    NAME = "name"
    PHONE = "phone"
    ID_CARD = "id_card"
    EMAIL = "email"


MASKS: dict[PersonalKind, Callable[[str], str]] = {
    PersonalKind.NAME: mask_name,  # 张*
    PersonalKind.PHONE: mask_phone,  # 138****1234
    PersonalKind.ID_CARD: mask_id_card,  # 1101**********1234
    PersonalKind.EMAIL: mask_email,  # z***@example.com
}

# Field names of customer records and the kind of personal value each holds.
PERSONAL_FIELDS: dict[str, PersonalKind] = {
    "name": PersonalKind.NAME,
    "phone": PersonalKind.PHONE,
    "mobile": PersonalKind.PHONE,
    "id_card": PersonalKind.ID_CARD,
    "email": PersonalKind.EMAIL,
}


def may_reveal(privileges: frozenset[Privilege] | set[Privilege]) -> bool:
    return Privilege.REVEAL_PERSONAL in privileges


def mask(kind: PersonalKind, value: str | None, privileges: frozenset[Privilege] | set[Privilege]) -> str | None:
    """`value` as a viewer with `privileges` may see it: in clear with `REVEAL_PERSONAL`, masked otherwise."""
    if value is None or may_reveal(privileges):
        return value
    return MASKS[kind](value)


def mask_record(
    record: Mapping[str, object],
    privileges: frozenset[Privilege] | set[Privilege],
    fields: Mapping[str, PersonalKind] = PERSONAL_FIELDS,
) -> dict[str, object]:
    """A copy of `record` with each personal field (by `fields`) masked unless the viewer may reveal it.

    Stored forms (`*_enc`, `*_hash`) are never shown to anyone and are dropped.
    """
    out: dict[str, object] = {}
    for key, value in record.items():
        if key.endswith(("_enc", "_hash")):
            continue
        kind = fields.get(key)
        out[key] = mask(kind, value, privileges) if kind is not None and isinstance(value, str) else value
    return out

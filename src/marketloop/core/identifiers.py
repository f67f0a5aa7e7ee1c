"""Identifier normalisation and validation: phone numbers, Chinese ID numbers, emails.

Pure functions: the importer, OneID and the API all normalise the same way,
so the same person's phone typed three ways hashes to one value.
"""

from __future__ import annotations

import re
from datetime import date

_NON_DIGITS = re.compile(r"[\s\-()（）.]")
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_phone(raw: str) -> str | None:
    """An 11-digit mainland mobile number, or None when `raw` is not one.

    Accepts spaces, dashes, brackets, and the prefixes +86, 0086 and 86.
    """
    digits = _NON_DIGITS.sub("", raw.strip())
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix) :]
            break
    return digits if _MAINLAND_MOBILE.match(digits) else None


def id_card_check_digit(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def normalise_id_card(raw: str) -> str | None:
    """An 18-character resident ID number with a valid check digit and birth date, or None."""
    value = raw.strip().upper()
    if len(value) != 18 or not value[:17].isdigit() or value[17] not in "0123456789X":
        return None
    if id_card_check_digit(value[:17]) != value[17]:
        return None
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None
    if born.year < 1900:
        return None
    return value


def id_card_birth_date(value: str) -> date:
    """Birth date encoded in a valid ID number."""
    return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def id_card_gender(value: str) -> str:
    """'M' or 'F' from the 17th digit of a valid ID number."""
    return "M" if int(value[16]) % 2 else "F"


def normalise_email(raw: str) -> str | None:
    value = raw.strip().lower()
    return value if _EMAIL.match(value) else None


def mask_phone(phone: str) -> str:
    """138****1234."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_name(name: str) -> str:
    """张* / 欧阳** : the family name's first character, the rest hidden."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def mask_id_card(id_card: str) -> str:
    """1101**********1234: the first four (region) and last four characters, the rest hidden."""
    if len(id_card) <= 8:
        return "*" * len(id_card) if id_card else ""
    return id_card[:4] + "*" * (len(id_card) - 8) + id_card[-4:]


def mask_email(email: str) -> str:
    """z***@example.com: the first character of the local part, then *** and the domain."""
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return (local[:1] or "*") + "***@" + domain

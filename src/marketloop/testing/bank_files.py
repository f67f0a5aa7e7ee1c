"""Test helpers for core-banking export files: valid Chinese ID numbers and CSV files as a core system writes them.

Public, so a bank's own tests of its mappings can use them too.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from marketloop.core.identifiers import id_card_check_digit


def id_card(born: str = "19900307", *, region: str = "330106", sequence: str = "123") -> str:
    """A valid 18-character resident ID number (GB 11643 check digit); an odd last `sequence` digit is male."""
    first17 = region + born + sequence
    return first17 + id_card_check_digit(first17)


def wrong_check_digit(value: str) -> str:
    """`value` with a check digit that does not match its first 17 digits."""
    right = value[17]
    return value[:17] + next(c for c in "0123456789X" if c != right)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]], *, encoding: str = "utf-8") -> Path:
    """Write `rows` under `header` as CSV in `encoding` (None is an empty field); returns `path`."""
    with path.open("w", encoding=encoding, newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
    return path

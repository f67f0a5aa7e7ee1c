"""What an import preview may show of personal values: masked, never in clear (张*, 138****1234)."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from marketloop.core.identifiers import mask_name, mask_phone
from marketloop.core.personal import EMAIL, ID_CARD, NAME, PHONE


def _mask_id_card(value: str) -> str:
    """1101**********1234, as core.identifiers.mask_id_card (being added with role masking) will show it."""
    return value[:4] + "*" * (len(value) - 8) + value[-4:] if len(value) > 8 else "*" * len(value)


def _mask_email(value: str) -> str:
    local, at, domain = value.partition("@")
    return (local[:1] or "*") + "***@" + domain if at else "***"


MASKS: dict[str, Callable[[str], str]] = {
    NAME.source: mask_name,
    PHONE.source: mask_phone,
    ID_CARD.source: _mask_id_card,
    EMAIL.source: _mask_email,
}


def masked(rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` (a few cleaned rows) with every personal value in clear replaced by its mask."""
    return rows.with_columns(
        pl.Series(name, [None if v is None else mask(v) for v in rows[name].to_list()], dtype=pl.String)
        for name, mask in MASKS.items()
        if name in rows.columns
    )

"""Turning personal values in clear into what a bank table stores: keyed hashes and ciphertexts.

Owns one rule besides the cipher calls: a stored ciphertext is kept when the
value behind it has not changed. AES-GCM gives a new ciphertext on every
encryption, so without this a re-import of the same file would rewrite every
customer; with it, re-importing changes nothing. A phone number is compared
by its keyed hash, a name or email by decrypting the stored value.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from marketloop.core.bank import TableSpec
from marketloop.core.errors import MarketloopError
from marketloop.core.personal import PersonalField
from marketloop.security.crypto import FieldCipher

_OLD = "__stored."


def stored_columns(fields: Sequence[PersonalField]) -> list[str]:
    """The table columns `protect` reads back from the store to re-use."""
    return [c for f in fields if f.encrypted for c in (f.encrypted, f.hashed) if c is not None]


def protect(
    rows: pl.DataFrame,
    fields: Sequence[PersonalField],
    cipher: FieldCipher,
    stored: pl.DataFrame | None,
    table: TableSpec,
) -> pl.DataFrame:
    """`rows` with the hash and ciphertext columns of each personal field added (the values in clear are kept).

    `stored` holds the key and `stored_columns(fields)` of rows already in the table (or is None).
    """
    previous = _aligned(rows, stored, table)
    added = []
    for field in fields:
        values = rows[field.source].to_list()
        hashes = (
            [None if v is None else cipher.keyed_hash(field.hash_kind, v) for v in values] if field.hashed else None
        )
        if field.hashed:
            added.append(pl.Series(field.hashed, hashes, dtype=pl.String))
        if field.encrypted:
            added.append(
                pl.Series(field.encrypted, _ciphertexts(cipher, field, values, hashes, previous), dtype=pl.String)
            )
    return rows.with_columns(added)


def _aligned(rows: pl.DataFrame, stored: pl.DataFrame | None, table: TableSpec) -> dict[str, list[str | None]]:
    """The stored columns, row for row with `rows` (None where a key is new)."""
    if stored is None or stored.is_empty():
        return {}
    key = list(table.key)
    renamed = stored.rename({c: _OLD + c for c in stored.columns if c not in key})
    joined = rows.select(key).join(renamed, on=key, how="left", maintain_order="left", nulls_equal=False)
    return {c.removeprefix(_OLD): joined[c].to_list() for c in renamed.columns if c.startswith(_OLD)}


def _ciphertexts(
    cipher: FieldCipher,
    field: PersonalField,
    values: list[str | None],
    hashes: list[str | None] | None,
    previous: dict[str, list[str | None]],
) -> list[str | None]:
    """A ciphertext per value: the stored one when it holds the same value, else a new one."""
    column = field.encrypted or field.source
    old = previous.get(column) or [None] * len(values)
    old_hashes = previous.get(field.hashed) if field.hashed else None
    out: list[str | None] = []
    for i, value in enumerate(values):
        prior = old[i]
        if value is None:
            out.append(None)
        elif prior is not None and (
            old_hashes[i] == hashes[i] if old_hashes and hashes else _decrypts_to(cipher, column, prior, value)
        ):
            out.append(prior)
        else:
            out.append(cipher.encrypt(value, context=column))
    return out


def _decrypts_to(cipher: FieldCipher, column: str, ciphertext: str, value: str) -> bool:
    try:
        return cipher.decrypt(ciphertext, context=column) == value
    except MarketloopError:  # a value under a lost key or tampered: write it anew
        return False

"""Batch import of core-banking data: read, clean, validate, dedupe, protect, merge — or only preview.

Owns the order of the stages and what the caller learns: counts, the
rejects file (each refused row as it was in the file, its line and the
reasons), a masked preview, and the imported customers' identifiers for
OneID. Everything that can be refused is refused before the one `merge`,
and the merge is atomic, so an import loads all of its good rows or none.
Re-importing the same file changes nothing (inserted 0, updated 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import polars as pl

from marketloop.core.bank import CUSTOMERS, TableSpec
from marketloop.core.personal import PersonalField, personal_fields
from marketloop.ports.bank import BankStore, MergeResult
from marketloop.profiles import cleaning, preview
from marketloop.profiles.mapping import ImportMapping, load_mapping
from marketloop.profiles.protection import protect, stored_columns
from marketloop.profiles.reading import LINE, read_header, read_rows
from marketloop.security.crypto import FieldCipher

REASON = cleaning.REASON
CustomersHook = Callable[[pl.DataFrame], None]


class ImportProgress(Protocol):
    """Where an import reports its stages (read, clean, protect, merge) and how far each has come."""

    def stage(self, name: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


class _Silent:
    def stage(self, name: str, total: int) -> None:
        return None

    def advance(self, amount: int) -> None:
        return None


@dataclass(frozen=True, kw_only=True)
class ImportRequest:
    table: str
    file: Path
    mapping: Path
    preview: bool = False
    preview_rows: int = 10
    rejects: Path | None = None  # default: <file stem>.rejects.csv beside the file (not written by a preview)


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    table: str
    read: int
    rejected: int  # rows refused by a cleaning rule
    duplicates: int  # rows dropped because a later (or earlier, `keep: first`) row has the same key
    rejects_file: Path | None
    seconds: float
    merged: MergeResult | None = None  # None for a preview
    existing: int = 0  # preview: valid rows whose key is already stored
    sample: pl.DataFrame = field(default_factory=pl.DataFrame)  # preview: first rows as stored, personal masked
    reject_sample: pl.DataFrame = field(default_factory=pl.DataFrame)  # first rejects: line and reason
    customers: pl.DataFrame | None = None  # imported customers' identifiers (see `customer_identifiers`)

    def summary(self) -> dict[str, object]:
        merged = self.merged or MergeResult(inserted=0, updated=0, unchanged=0)
        return {
            "table": self.table,
            "read": self.read,
            "inserted": merged.inserted,
            "updated": merged.updated,
            "unchanged": merged.unchanged,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rejects_file": None if self.rejects_file is None else str(self.rejects_file),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, kw_only=True)
class _Checked:
    """A file after cleaning and dedupe: the rows to load and the refused ones with their reasons."""

    read: int
    valid: pl.DataFrame
    refused: pl.DataFrame  # `_line`, `_reason`
    rejected: int
    duplicates: int


class ImportService:
    """Imports files into the bank tables (`BankStore`), protecting personal fields with a `FieldCipher`."""

    def __init__(
        self,
        bank: BankStore,
        cipher: FieldCipher,
        *,
        on_customers: CustomersHook | None = None,
        chunk_rows: int = 100_000,
    ) -> None:
        self._bank = bank
        self._cipher = cipher
        self._on_customers = on_customers  # OneID links these identifiers after a customers import
        self._chunk_rows = chunk_rows

    def run(self, request: ImportRequest, progress: ImportProgress | None = None) -> ImportResult:
        """Import (or preview) `request.file`; raises `MarketloopError` (invalid) before loading anything."""
        started = time.perf_counter()
        progress = progress or _Silent()
        mapping = load_mapping(request.mapping, request.table)
        header = read_header(request.file, mapping)
        mapping.check_header(header, str(request.file))
        progress.stage("read", 1)
        rows = read_rows(request.file, mapping, header)
        progress.advance(1)
        checked = self._check(rows, mapping, progress)
        rejects_file = _write_rejects(rows, checked.refused, _rejects_path(request))
        del rows  # the file as read is not needed any more: a million rows of text
        if request.preview:
            return self._preview(request, mapping, checked, rejects_file, started)
        stored = self._protect(checked.valid, mapping, progress)
        progress.stage("merge", 1)
        merged = self._bank.merge(mapping.table, stored.select(_table_columns(mapping.table, stored)))
        progress.advance(1)
        customers = customer_identifiers(stored) if mapping.table is CUSTOMERS else None
        if customers is not None and self._on_customers is not None:
            self._on_customers(customers)
        return ImportResult(
            table=mapping.table.name,
            read=checked.read,
            rejected=checked.rejected,
            duplicates=checked.duplicates,
            rejects_file=rejects_file,
            seconds=time.perf_counter() - started,
            merged=merged,
            reject_sample=checked.refused.head(request.preview_rows),
            customers=customers,
        )

    def _check(self, rows: pl.DataFrame, mapping: ImportMapping, progress: ImportProgress) -> _Checked:
        progress.stage("clean", max(len(rows), 1))
        parts = []
        for chunk in rows.iter_slices(self._chunk_rows):
            parts.append(cleaning.clean(chunk, mapping))
            progress.advance(len(chunk))
        cleaned = pl.concat(parts, rechunk=False) if parts else cleaning.clean(rows, mapping)
        invalid = cleaned.filter(pl.col(REASON).is_not_null()).select(LINE, REASON)
        valid, duplicates = dedupe(cleaned.filter(pl.col(REASON).is_null()).drop(REASON), mapping)
        refused = pl.concat([invalid, duplicates]).sort(LINE)
        return _Checked(read=len(rows), valid=valid, refused=refused, rejected=len(invalid), duplicates=len(duplicates))

    def _protect(self, valid: pl.DataFrame, mapping: ImportMapping, progress: ImportProgress) -> pl.DataFrame:
        fields = _mapped_personal(mapping)
        if not fields:
            return valid
        progress.stage("protect", max(len(valid), 1))
        parts = []
        for chunk in valid.iter_slices(self._chunk_rows):  # chunk by chunk: the stored values of a chunk only
            parts.append(
                protect(chunk, fields, self._cipher, self._stored(chunk, mapping.table, fields), mapping.table)
            )
            progress.advance(len(chunk))
        return pl.concat(parts, rechunk=False) if parts else protect(valid, fields, self._cipher, None, mapping.table)

    def _stored(self, valid: pl.DataFrame, table: TableSpec, fields: list[PersonalField]) -> pl.DataFrame | None:
        """The stored ciphertexts and hashes of keys already in the table (to re-use unchanged ones)."""
        columns = stored_columns(fields)
        if not columns or valid.is_empty():
            return None
        return self._bank.fetch(table, valid.select(table.key)).select(*table.key, *columns)

    def _preview(
        self,
        request: ImportRequest,
        mapping: ImportMapping,
        checked: _Checked,
        rejects_file: Path | None,
        started: float,
    ) -> ImportResult:
        key = list(mapping.table.key)
        existing = 0 if checked.valid.is_empty() else len(self._bank.fetch(mapping.table, checked.valid.select(key)))
        return ImportResult(
            table=mapping.table.name,
            read=checked.read,
            rejected=checked.rejected,
            duplicates=checked.duplicates,
            rejects_file=rejects_file,
            seconds=time.perf_counter() - started,
            existing=existing,
            sample=preview.masked(checked.valid.head(request.preview_rows)),
            reject_sample=checked.refused.head(request.preview_rows),
        )


def dedupe(valid: pl.DataFrame, mapping: ImportMapping) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per key (the last or first in the file, as `dedupe.keep` says) and the dropped rows with a reason."""
    key = list(mapping.table.key)
    line = pl.col(LINE)
    marked = valid.with_columns((line.max() if mapping.keep == "last" else line.min()).over(key).alias("__kept"))
    named = [pl.concat_str(pl.lit(f"{k}="), pl.col(k).cast(pl.String)) for k in key]
    reason = pl.concat_str(
        pl.lit("duplicate key "),
        pl.concat_str(named, separator=", "),
        pl.lit(" (line "),
        pl.col("__kept"),
        pl.lit(" kept)"),
    )
    dropped = marked.filter(line != pl.col("__kept")).select(LINE, reason.alias(REASON))
    return marked.filter(line == pl.col("__kept")).drop("__kept"), dropped


def customer_identifiers(rows: pl.DataFrame) -> pl.DataFrame:
    """cust_no and whichever of phone, id_card, email (normalised, in clear) and their hashes the import carried."""
    wanted = ("cust_no", "phone", "phone_hash", "id_card", "id_card_hash", "email")
    return rows.select(c for c in wanted if c in rows.columns)


def _mapped_personal(mapping: ImportMapping) -> list[PersonalField]:
    fields = personal_fields(mapping.table)
    return [fields[c.target] for c in mapping.columns if c.target in fields]


def _table_columns(table: TableSpec, rows: pl.DataFrame) -> list[str]:
    return [c for c in table.names if c in rows.columns]


def _rejects_path(request: ImportRequest) -> Path | None:
    if request.rejects is not None:
        return request.rejects
    return None if request.preview else request.file.with_name(f"{request.file.stem}.rejects.csv")


def _write_rejects(rows: pl.DataFrame, refused: pl.DataFrame, path: Path | None) -> Path | None:
    """Each refused row as read, with its line and reasons; UTF-8 with a BOM so Excel shows the Chinese right.

    An old rejects file at the same path is replaced even when nothing was refused, so it never tells of a past run.
    """
    if path is None or (refused.is_empty() and not path.exists()):
        return None
    original = rows.with_columns(pl.exclude(LINE).cast(pl.String))
    table = refused.join(original, on=LINE, how="left", maintain_order="left")
    table.write_csv(path, include_bom=True)
    return path if not refused.is_empty() else None

"""Watermarked exports (导出水印): every file that leaves marketloop says who exported it and when.

Owns the watermark and how it is written:

- CSV: a first line `# marketloop_exported_by=<user>; marketloop_exported_at=<UTC ISO time>`
  before the header row (read it back with `read_csv_watermark`; polars
  reads the data with `pl.read_csv(path, comment_prefix="#")`);
- Parquet: the same two keys as key-value metadata of the file
  (`pl.read_parquet_metadata(path)`).

Use `export_frame` from an engine (the segment export does): it watermarks,
writes the file and records `export.write` in the audit log (target, format,
rows, columns, file name; never the data). `watermark` alone returns the
frame with its mark, for callers that stream the bytes themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from io import BytesIO
from pathlib import Path
from typing import IO

import polars as pl

from marketloop.core.audit import canonical_time
from marketloop.core.errors import ErrorKind, MarketloopError
from marketloop.ports.audit import AuditRecorder

EXPORTED_BY = "marketloop_exported_by"
EXPORTED_AT = "marketloop_exported_at"
CSV_PREFIX = "# "


class ExportFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"


@dataclass(frozen=True, kw_only=True)
class Watermark:
    """Who exported and when (UTC)."""

    user: str
    at: datetime

    @property
    def metadata(self) -> dict[str, str]:
        return {EXPORTED_BY: self.user, EXPORTED_AT: canonical_time(self.at)}

    @property
    def csv_line(self) -> str:
        """The comment line put before a CSV's header row (user names cannot break the line)."""
        user = self.user.replace("\n", " ").replace("\r", " ").replace(";", ",")
        return f"{CSV_PREFIX}{EXPORTED_BY}={user}; {EXPORTED_AT}={canonical_time(self.at)}\n"


@dataclass(frozen=True, kw_only=True)
class Watermarked:
    """A frame and its watermark, ready to write."""

    frame: pl.DataFrame
    mark: Watermark

    def write_csv(self, target: Path | IO[bytes]) -> None:
        """The watermark line, then the frame as CSV with a header row."""
        body = self.mark.csv_line.encode() + self.frame.write_csv().encode()
        if isinstance(target, Path):
            target.write_bytes(body)
        else:
            target.write(body)

    def write_parquet(self, target: Path | IO[bytes]) -> None:
        """The frame as Parquet with the watermark as key-value metadata."""
        self.frame.write_parquet(target, metadata=self.mark.metadata)

    def to_bytes(self, fmt: ExportFormat) -> bytes:
        buffer = BytesIO()
        if fmt is ExportFormat.CSV:
            self.write_csv(buffer)
        else:
            self.write_parquet(buffer)
        return buffer.getvalue()


def watermark(data: pl.DataFrame | Sequence[Mapping[str, object]], *, user: str, at: datetime) -> Watermarked:
    """`data` (a frame, or rows as mappings) with a watermark naming `user` and `at`."""
    if not user.strip():
        raise MarketloopError(kind=ErrorKind.INVALID, code="export.no-user", title="An export needs a user")
    frame = data if isinstance(data, pl.DataFrame) else pl.DataFrame([dict(row) for row in data])
    return Watermarked(frame=frame, mark=Watermark(user=user.strip(), at=at))


def export_frame(
    data: pl.DataFrame | Sequence[Mapping[str, object]],
    path: Path,
    fmt: ExportFormat,
    *,
    user: str,
    at: datetime,
    audit: AuditRecorder,
    target: str,
) -> Watermarked:
    """Watermark `data`, write it to `path` as `fmt`, and record `export.write` for `target` (e.g. "segment:42")."""
    marked = watermark(data, user=user, at=at)
    if fmt is ExportFormat.CSV:
        marked.write_csv(path)
    else:
        marked.write_parquet(path)
    details = {
        "format": fmt.value,
        "rows": marked.frame.height,
        "columns": marked.frame.columns,
        "file": path.name,
        EXPORTED_AT: marked.mark.metadata[EXPORTED_AT],
    }
    audit.record("export.write", target, details=details, actor=marked.mark.user)
    return marked


def read_csv_watermark(path: Path) -> dict[str, str]:
    """The watermark of a CSV written by `Watermarked.write_csv` ({} when its first line is not one)."""
    with path.open(encoding="utf-8") as file:
        first = file.readline()
    if not first.startswith(CSV_PREFIX):
        return {}
    pairs = (part.strip().partition("=") for part in first[len(CSV_PREFIX) :].split(";"))
    return {key: value for key, _, value in pairs if key in (EXPORTED_BY, EXPORTED_AT)}
